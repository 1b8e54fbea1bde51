#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on 127.0.0.1 and a free port, trust auth.
#   tests/pg/pg.sh start DIR     initdb + start (or, if DIR's server is running, nothing);
#                                the last line of stdout, and DIR/url, is the admin URL
#   tests/pg/pg.sh stop DIR      stop at once and remove DIR (nothing running: just removes it)
#   tests/pg/pg.sh restart DIR   stop (fast) and start again: same port, same data
# PG_FSYNC=on makes the server durable (fsync + synchronous_commit) for benchmarks; the tests'
# default is off, which keeps initdb and every commit from waiting on the disk.
set -euo pipefail

usage() { echo "usage: tests/pg/pg.sh start|stop|restart DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$(realpath -m -- "$2")
case $cmd in start | stop | restart) ;; *) usage ;; esac
fsync=${PG_FSYNC:-off}
case $fsync in on | off) ;; *) echo "pg.sh: PG_FSYNC must be on or off, not '$fsync'" >&2; exit 2 ;; esac

# Debian installs the server outside PATH, one folder per major version: take the newest.
bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "pg.sh: no PostgreSQL server under /usr/lib/postgresql/*/bin (tools/deps.sh test installs it)" >&2
  exit 1
fi

# initdb and postgres refuse to run as root: as root, the cluster belongs to nobody.
if [ "$(id -u)" -eq 0 ]; then
  pguser=nobody
  pg() { runuser -u nobody -- "$@"; }
else
  pguser=
  pg() { "$@"; }
fi

# Where the cluster's files are: DIR itself, unless nobody cannot reach it (a parent folder
# closed to others), then a folder under /tmp that DIR/rundir names.
rundir_of() { if [ -f "$dir/rundir" ]; then cat "$dir/rundir"; else echo "$dir"; fi; }

# The postmaster's pid when it is alive. Not pg_ctl status: it takes a zombie (a postmaster
# killed but not yet reaped, which a container's init may leave for a while) or a reused pid
# for a running server.
pm_pid() {
  local rd pid
  rd=$(rundir_of)
  pid=$(head -n 1 "$rd/data/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] || return 1
  [ "$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  echo "$pid"
}
running() { pm_pid >/dev/null; }

# postgres refuses to start while its lock files name a pid that kill(pid, 0) finds, a zombie
# included: once pm_pid says no server runs, they are stale.
clear_stale_locks() {
  local rd sock
  rd=$(rundir_of)
  sock=$(cat "$dir/sockdir" 2>/dev/null || echo "$rd")
  rm -f "$rd/data/postmaster.pid" "$sock"/.s.PGSQL.*.lock
}

# Runs a command that leaves a daemon behind with no descriptor but 0-2: the postmaster would
# otherwise keep our flock (fd 9) held, or a caller's pipe (ctest's, node's) open, for its life.
daemon() {
  (
    for f in /proc/self/fd/*; do
      n=${f##*/}
      [ "$n" -le 2 ] || eval "exec $n>&-" 2>/dev/null || true
    done
    "$@"
  )
}

port_taken() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts the initialized cluster on port $1; returns 3 when the port could not be bound (another
# process took it), so that start can try another one. pg_ctl's chatter goes to stderr: stdout
# carries the URL only.
launch() {
  local port=$1 rd log size
  rd=$(rundir_of)
  log=$rd/log
  clear_stale_locks
  size=$(stat -c %s "$log" 2>/dev/null || echo 0)
  if daemon pg "$bin/pg_ctl" start -w -t 60 -D "$rd/data" -l "$log" -o "-p $port" >&2; then
    return 0
  fi
  if tail -c +"$((size + 1))" "$log" 2>/dev/null | grep -qE 'Address already in use|could not create any TCP/IP sockets'; then
    return 3
  fi
  echo "pg.sh: the server did not start; its log ($log):" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}

do_stop() {
  local mode=$1 rd pid
  rd=$(rundir_of)
  pid=$(pm_pid) || return 0
  pg "$bin/pg_ctl" stop -w -t 60 -m "$mode" -D "$rd/data" >&2 && return 0
  # Never leave a server behind: its children follow a killed postmaster on their own.
  echo "pg.sh: pg_ctl stop failed: killing the postmaster ($pid)" >&2
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}

# Removes the /tmp folders DIR/rundir and DIR/sockdir name, and those names.
forget_tmp() {
  local f d
  for f in rundir sockdir; do
    d=$(cat "$dir/$f" 2>/dev/null || true)
    case $d in /tmp/sb-pg*) rm -rf "$d" ;; esac
    rm -f "$dir/$f"
  done
}

do_start() {
  mkdir -p "$dir"
  local rd sock port tries rc
  if [ -f "$dir/url" ] && running; then
    cat "$dir/url"
    return 0
  fi
  rd=$(rundir_of)
  if [ -f "$rd/data/PG_VERSION" ] && [ -f "$dir/port" ]; then
    # Initialized before but not running (killed, or the machine rebooted): start it again.
    port=$(cat "$dir/port")
    launch "$port" || { rc=$?; [ $rc -eq 3 ] || return $rc; port=; }
  else
    # A fresh cluster: forget the folders of an earlier, half-made one.
    forget_tmp
    rd=$dir
    if [ -n "$pguser" ]; then
      chown "$pguser" "$dir"
      if ! pg test -w "$dir" -a -x "$dir"; then
        rd=$(mktemp -d /tmp/sb-pg.XXXXXX)
        chown "$pguser" "$rd"
        echo "$rd" >"$dir/rundir"
        ln -sfn "$rd/log" "$dir/log"
      fi
    fi
    rm -rf "$rd/data"
    # A socket path is limited to 107 bytes (sun_path): a deep DIR gets a short socket folder.
    sock=$rd
    if [ ${#sock} -gt 80 ]; then
      sock=$(mktemp -d /tmp/sb-pgs.XXXXXX)
      [ -z "$pguser" ] || chown "$pguser" "$sock"
      echo "$sock" >"$dir/sockdir"
    fi
    if ! pg "$bin/initdb" --no-sync -A trust -U postgres -E UTF8 --locale=C -D "$rd/data" >"$dir/initdb.log" 2>&1; then
      echo "pg.sh: initdb failed:" >&2
      cat "$dir/initdb.log" >&2
      return 1
    fi
    # Appended last, so these win over initdb's values; a restart reads them again.
    pg tee -a "$rd/data/postgresql.conf" >/dev/null <<EOF

# tests/pg/pg.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
max_connections = 300
shared_buffers = 64MB
fsync = $fsync
synchronous_commit = $fsync
EOF
    port=
  fi
  # A random port below Linux's ephemeral range (32768+), so that clients' own ports seldom
  # collide; a port taken between the check and the bind makes launch return 3: try another.
  tries=0
  while [ -z "$port" ]; do
    tries=$((tries + 1))
    if [ $tries -gt 20 ]; then
      echo "pg.sh: no free port found after 20 tries" >&2
      return 1
    fi
    port=$((20000 + RANDOM % 12000))
    port_taken "$port" && { port=; continue; }
    launch "$port" || { rc=$?; [ $rc -eq 3 ] || return $rc; port=; }
  done
  echo "$port" >"$dir/port"
  echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/url.tmp"
  mv "$dir/url.tmp" "$dir/url"
  cat "$dir/url"
}

case $cmd in
  start)
    # Two starts of one DIR at once would initdb twice: one at a time.
    mkdir -p "$dir"
    exec 9>"$dir/.lock"
    flock 9
    do_start
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    do_stop immediate || true
    forget_tmp
    rm -rf "$dir"
    ;;
  restart)
    [ -f "$dir/port" ] || { echo "pg.sh: no cluster in $dir (start it first)" >&2; exit 1; }
    exec 9>"$dir/.lock"
    flock 9
    do_stop fast || true # it killed what would not stop: start regardless
    # The same port: clients hold the URL. A refused bind here is an error, not a retry.
    if ! launch "$(cat "$dir/port")"; then
      echo "pg.sh: could not start again on port $(cat "$dir/port")" >&2
      exit 1
    fi
    cat "$dir/url"
    ;;
esac
