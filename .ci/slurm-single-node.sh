#!/usr/bin/env bash
# One-node Slurm cluster (slurmctld + slurmd on this host) from Debian 12 packages, for the
# cluster tests (`.ci/run` starts it; see README "Running on a cluster").
# Intended for root on a container/microVM without systemd as PID 1.
#
#   slurm-single-node.sh start   # install (if needed), configure, start daemons, wait for node idle
#   slurm-single-node.sh stop    # stop the daemons this script started (by pidfile)
#
# Environment knobs:
#   SLURM_ACCOUNTING=1   also install MariaDB + slurmdbd so that `sacct` works (default 0)
#   SLURM_CGROUP=auto    auto|1|0: cgroup proctrack/task plugins (memory limits, OOM state);
#                        auto = on only when the cgroup-v1 memory controller is mounted
#   SLURM_CPUS=N         advertise N CPUs (may exceed nproc: oversubscription for faster CI)
#   SLURM_MAX_ARRAY_SIZE=N  job arrays of at most N tasks (default 1001; low in CI, so that the
#                        tests see a sweep split into several arrays)
set -euo pipefail

ACCT=${SLURM_ACCOUNTING:-0}
CG=${SLURM_CGROUP:-auto}
PIDDIR=/run/slurm
LOGDIR=/var/log/slurm
HOST=$(hostname -s)

wait_for() { # wait_for <seconds> <cmd...>
  local n=$(( $1 * 5 )); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out waiting for: $*" >&2; return 1
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_pkgs() {
  local pkgs="slurmctld slurmd slurm-client munge"
  [ "$ACCT" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
  # shellcheck disable=SC2086
  if ! dpkg -s $pkgs >/dev/null 2>&1; then
    apt-get update -qq
    # policy-rc.d / no systemd: postinst cannot start services; that is fine, we start them below.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  fi
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then          # the Debian postinst normally creates it
    mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  alive /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
  wait_for 10 sh -c 'munge -n | unmunge'
}

start_mariadb_slurmdbd() {
  install -d -o mysql -g mysql /run/mysqld
  if ! alive /run/mysqld/mysqld.pid; then
    setsid /usr/sbin/mariadbd --user=mysql >/var/log/mariadbd.log 2>&1 < /dev/null &
  fi
  wait_for 30 mariadb -e 'select 1'
  mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$LOGDIR/slurmdbd.log
PidFile=$PIDDIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  chmod 600 /etc/slurm/slurmdbd.conf              # slurmdbd refuses a world-readable config
  alive $PIDDIR/slurmdbd.pid || slurmdbd
  wait_for 30 sacctmgr -n show cluster
}

write_slurm_conf() {
  local mem cpus node proctrack task gather
  mem=$(( $(free -m | awk '/^Mem:/{print $2}') * 9 / 10 ))
  cpus=${SLURM_CPUS:-$(nproc)}
  # Take sockets/cores/threads from the hardware, but override CPUs/RealMemory.
  node=$(slurmd -C | head -1 | sed -E "s/ CPUs=[0-9]+//; s/ RealMemory=[0-9]+//")
  if [ "$cpus" != "$(nproc)" ]; then node="NodeName=$HOST"; fi   # oversubscribed: plain CPUs=
  if [ "$CG" = auto ]; then
    if [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then CG=1; else CG=0; fi
  fi
  if [ "$CG" = 1 ]; then
    proctrack=proctrack/cgroup; task=task/cgroup,task/affinity
    printf 'CgroupPlugin=autodetect\nConstrainCores=yes\nConstrainRAMSpace=yes\n' > /etc/slurm/cgroup.conf
  else
    proctrack=proctrack/linuxproc; task=task/none
  fi
  gather=jobacct_gather/none
  local acct="AccountingStorageType=accounting_storage/none"
  if [ "$ACCT" = 1 ]; then
    gather=jobacct_gather/linux
    acct=$'AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost'
  fi
  cat > /etc/slurm/slurm.conf <<EOF
ClusterName=ci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=$proctrack
TaskPlugin=$task
JobAcctGatherType=$gather
$acct
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MaxArraySize=${SLURM_MAX_ARRAY_SIZE:-1001}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$(( mem / cpus ))
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$PIDDIR/slurmctld.pid
SlurmdPidFile=$PIDDIR/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
$node CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
  install_pkgs
  mkdir -p /var/spool/slurmctld /var/spool/slurmd $LOGDIR $PIDDIR
  start_munge
  write_slurm_conf
  [ "$ACCT" = 1 ] && start_mariadb_slurmdbd
  alive $PIDDIR/slurmctld.pid || slurmctld     # daemonizes, writes its pidfile
  wait_for 30 scontrol ping
  alive $PIDDIR/slurmd.pid || slurmd
  wait_for 60 sh -c "sinfo -h -n $HOST -o %T | grep -qx idle"
  sinfo
}

stop() {
  local f
  for f in $PIDDIR/slurmd.pid $PIDDIR/slurmctld.pid $PIDDIR/slurmdbd.pid \
           /run/mysqld/mysqld.pid /run/munge/munged.pid; do
    if alive "$f"; then
      local pid; pid=$(cat "$f"); kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
