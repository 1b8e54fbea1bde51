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
