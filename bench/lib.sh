# Shared by the bench scripts (sourced, not run).

# The port a server process listens on, waited for (up to 10 s). The server logs it only at
# info level, and info would log every request of a run: find the listening socket among the
# process's descriptors instead. Prints the port, or fails with the server's log.
#   port=$(bench_wait_port PID LOGFILE)
bench_wait_port() {
  local pid=$1 log=$2 inodes hex
  for _ in $(seq 200); do
    inodes=$(find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n' | paste -sd'|')
    if [ -n "$inodes" ]; then
      hex=$(awk -v re="^($inodes)\$" 'FNR > 1 && $4 == "0A" && $10 ~ re { split($2, a, ":"); print a[2]; exit }' \
        /proc/net/tcp /proc/net/tcp6)
      [ -n "$hex" ] && { echo $((16#$hex)); return 0; }
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "switchboard did not start" >&2
  cat "$log" >&2
  return 1
}

# What else ran: every other process's CPU time in ticks (utime stime cutime cstime: one that
# ends shows in its parent's once reaped), less this script's (the load generator is its child)
# and the servers' (SERVER_PID, and any more pids given: a second instance, a PostgreSQL
# postmaster; their child processes too, a postmaster's backends); kernel threads apart (softirq
# work, ours too, lands there). Prints "others kernel_threads". getline: a process that ends
# between the glob and the read is skipped, not an error. /proc/stat's busy time would be
# simpler, but it is sampled at the timer tick and undercounts this load.
#   read -r o k < <(bench_others "$server_pid" [PID...])
bench_others() {
  awk -v a="$$" -v b="$*" 'BEGIN { n = split(b, q, " "); for (j = 1; j <= n; j++) ours[q[j]] = 1
    for (i = 1; i < ARGC; i++) { f = ARGV[i]; split(f, p, "/")
      if (p[3] != a && !(p[3] in ours) && (getline l < f) > 0) { sub(/.*\) /, "", l); split(l, x, " ")
        if (x[2] in ours) { close(f); continue }
        if (p[3] == 2 || x[2] == 2) k += x[12] + x[13]; else s += x[12] + x[13] + x[14] + x[15] }
      close(f) }
    print s + 0, k + 0; exit }' /proc/[0-9]*/stat
}
