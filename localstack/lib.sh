# Shared by the localstack/ scripts: settings, progress output, and idempotent install/start steps.
# Every setting can be overridden from the environment; README.md lists them.

set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Per-checkout state: pid files and logs.
STATE_DIR=${STOCKROOM_STATE_DIR:-$REPO_DIR/.stack}
# Tools installed once per machine and reused by every checkout (cargo-lambda's venv).
TOOLS_DIR=${STOCKROOM_TOOLS_DIR:-$HOME/.cache/stockroom}
CARGO_LAMBDA_VERSION=1.9.2
TANSU_VERSION=0.6.0

PG_PORT=${STOCKROOM_PG_PORT:-55432}
# PostgreSQL runs as the `postgres` user, which must reach its data dir: keep it out of $HOME.
PG_DIR=${STOCKROOM_PG_DIR:-/var/tmp/stockroom/pg-$PG_PORT}
API_PORT=${STOCKROOM_API_PORT:-9000}
KAFKA_PORT=${STOCKROOM_KAFKA_PORT:-9092}
KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}
export KAFKA_BROKERS
TOPICS="inventory-events order-events"
# SQS: moto's server locally; point AWS_ENDPOINT_URL_SQS at LocalStack or leave it to AWS instead.
SQS_PORT=${STOCKROOM_SQS_PORT:-4566}
AWS_ENDPOINT_URL_SQS=${AWS_ENDPOINT_URL_SQS:-http://127.0.0.1:$SQS_PORT}
AWS_REGION=${AWS_REGION:-us-east-1}
AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local}
AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
ALERTS_QUEUE_URL=${ALERTS_QUEUE_URL:-$AWS_ENDPOINT_URL_SQS/123456789012/stockroom-alerts}
DEAD_LETTER_QUEUE_URL=${DEAD_LETTER_QUEUE_URL:-$AWS_ENDPOINT_URL_SQS/123456789012/stockroom-dead-letters}
export AWS_ENDPOINT_URL_SQS AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY ALERTS_QUEUE_URL DEAD_LETTER_QUEUE_URL

INVENTORY_DATABASE_URL=${INVENTORY_DATABASE_URL:-postgres://postgres@127.0.0.1:$PG_PORT/inventory_db}
ORDER_DATABASE_URL=${ORDER_DATABASE_URL:-postgres://postgres@127.0.0.1:$PG_PORT/order_db}
# The order functions reach inventory_db only as stockroom_orders, which may only call the
# stock reservation functions.
STOCK_RESERVATION_DATABASE_URL=${STOCK_RESERVATION_DATABASE_URL:-postgres://stockroom_orders@127.0.0.1:$PG_PORT/inventory_db}
NOTIFICATION_DATABASE_URL=${NOTIFICATION_DATABASE_URL:-postgres://postgres@127.0.0.1:$PG_PORT/notification_db}
export INVENTORY_DATABASE_URL ORDER_DATABASE_URL STOCK_RESERVATION_DATABASE_URL NOTIFICATION_DATABASE_URL

if [ -t 1 ]; then BOLD=$'\033[1m' RED=$'\033[31m' PLAIN=$'\033[0m'; else BOLD='' RED='' PLAIN=''; fi
# Each step says how long the command has been running, so a slow one shows; scripts it runs
# (localstack/fuzz from localstack/test) count from its start, not their own.
export STOCKROOM_STARTED=${STOCKROOM_STARTED:-$EPOCHSECONDS}
step() {
    local elapsed=$((EPOCHSECONDS - STOCKROOM_STARTED))
    printf '%s==> [%d:%02d] %s%s\n' "$BOLD" $((elapsed / 60)) $((elapsed % 60)) "$*" "$PLAIN"
}
info() { printf '    %s\n' "$*"; }
die() { printf '%serror: %s%s\n' "$RED" "$*" "$PLAIN" >&2; exit 1; }

mkdir -p "$STATE_DIR"

as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        # runuser keeps the caller's environment out of the server's way.
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
    done
    return 1
}

ensure_postgres_installed() {
    if pg_bin >/dev/null; then
        info "PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') is installed"
        return
    fi
    step "Installing PostgreSQL from Debian's packages"
    [ "$(id -u)" = 0 ] || die "PostgreSQL is missing; run as root or install the 'postgresql' package"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    pg_bin >/dev/null || die "PostgreSQL install did not provide pg_ctl"
}

pg_ready() {
    "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

# PostgreSQL's ports lie in the kernel's range for outgoing connections (32768-60999): after a
# run with thousands of loopback connections, one of them can hold the port and the server cannot
# bind it. Reserving the port keeps the kernel from handing it out (needs root; else skipped).
reserve_port() {
    local file=/proc/sys/net/ipv4/ip_local_reserved_ports current
    [ -w "$file" ] || return 0
    current=$(cat "$file")
    case ",$current," in *",$1,"*) return 0 ;; esac
    echo "${current:+$current,}$1" >"$file" 2>/dev/null || true
}

# TLS material for the local PostgreSQL, made once per cluster directory: a CA, a server certificate
# for the name `localhost` only (so connecting to 127.0.0.1 with verify-full must fail), and a
# second CA that signed nothing (so a wrong root must fail). shared/tests/tls.rs relies on all three.
PG_TLS_DIR="$PG_DIR/tls"
export STOCKROOM_PG_CA="$PG_TLS_DIR/ca.crt"
make_postgres_certificates() {
    [ -s "$PG_TLS_DIR/server.crt" ] && [ -s "$PG_TLS_DIR/other-ca.crt" ] && return
    step "Making a CA and a server certificate for PostgreSQL in $PG_TLS_DIR"
    mkdir -p "$PG_TLS_DIR"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    (
        cd "$PG_TLS_DIR"
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 3650 -subj "/CN=Stockroom local CA" 2>/dev/null
        openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.crt -days 3650 -subj "/CN=Another CA" 2>/dev/null
        openssl req -new "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
        printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile server.ext -out server.crt 2>/dev/null
        chmod 600 server.key
    ) || die "could not make PostgreSQL's certificates (openssl)"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG_TLS_DIR"
    chmod 644 "$PG_TLS_DIR"/*.crt
}

start_postgres() {
    local bin
    bin=$(pg_bin)
    reserve_port "$PG_PORT"
    if pg_ready; then
        info "PostgreSQL already answers on 127.0.0.1:$PG_PORT"
        return
    fi
    if [ ! -s "$PG_DIR/data/PG_VERSION" ]; then
        step "Creating a PostgreSQL cluster in $PG_DIR"
        mkdir -p "$PG_DIR/data"
        [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG_DIR"
        as_postgres "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 ||
            die "initdb failed; see $PG_DIR/initdb.log"
    fi
    make_postgres_certificates
    step "Starting PostgreSQL on 127.0.0.1:$PG_PORT (TLS offered, not required)"
    as_postgres "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=500 -c shared_preload_libraries=pg_stat_statements -c ssl=on -c ssl_cert_file=$PG_TLS_DIR/server.crt -c ssl_key_file=$PG_TLS_DIR/server.key" start >/dev/null 9>&- ||
        die "PostgreSQL did not start; see $PG_DIR/postgres.log"
}

stop_postgres() {
    local bin
    bin=$(pg_bin) || return 0
    if [ -s "$PG_DIR/data/postmaster.pid" ]; then
        step "Stopping PostgreSQL"
        as_postgres "$bin/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
    fi
}

psql_admin() {
    "$(pg_bin)/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

create_databases() {
    local db
    for db in inventory_db order_db notification_db; do
        if [ -z "$(psql_admin -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
            psql_admin -d postgres -c "CREATE DATABASE $db" >/dev/null
            info "created database $db"
        fi
    done
}

migrate() {
    step "Applying migrations"
    cargo run --quiet -p stockroom-migrate -- inventory_db "$INVENTORY_DATABASE_URL" | sed 's/^/    /'
    cargo run --quiet -p stockroom-migrate -- order_db "$ORDER_DATABASE_URL" | sed 's/^/    /'
    cargo run --quiet -p stockroom-migrate -- notification_db "$NOTIFICATION_DATABASE_URL" | sed 's/^/    /'
    # The migration creates the role without LOGIN (a deployment gives it credentials); locally
    # the cluster trusts loopback, so it only needs to be allowed to log in.
    psql_admin -d postgres -c "ALTER ROLE stockroom_orders LOGIN" >/dev/null
}

ensure_cargo_lambda() {
    CARGO_LAMBDA="$TOOLS_DIR/venv/bin/cargo-lambda"
    if [ -x "$CARGO_LAMBDA" ] && "$CARGO_LAMBDA" lambda --version 2>/dev/null | grep -q "$CARGO_LAMBDA_VERSION"; then
        info "cargo-lambda $CARGO_LAMBDA_VERSION is installed"
        return
    fi
    step "Installing cargo-lambda $CARGO_LAMBDA_VERSION from PyPI into $TOOLS_DIR/venv"
    mkdir -p "$TOOLS_DIR"
    python3 -m venv "$TOOLS_DIR/venv"
    "$TOOLS_DIR/venv/bin/pip" install -q "cargo-lambda==$CARGO_LAMBDA_VERSION"
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The functions' environment, as template.yaml sets it in AWS (one file for cargo lambda watch).
ORDER_PENDING_TIMEOUT_SECONDS=${ORDER_PENDING_TIMEOUT_SECONDS:-60}
# As in AWS (template.yaml's LoggingConfig): one JSON object per log line. Set it to TEXT for
# lines that read better in a terminal.
AWS_LAMBDA_LOG_FORMAT=${AWS_LAMBDA_LOG_FORMAT:-JSON}
# Who may do what (shared/src/auth.rs): off by default, as the original clients expect;
# STOCKROOM_AUTH=local makes the functions verify development tokens (localstack/token mints
# them), as API Gateway's JWT authorizer verifies real ones in AWS.
AUTH_MODE=${STOCKROOM_AUTH:-off}
AUTH_ISSUER=${AUTH_ISSUER:-https://stockroom.local}
AUTH_AUDIENCE=${AUTH_AUDIENCE:-stockroom}
# A random secret per state directory, made once (hex: the env file takes no quoting): development
# tokens are only good locally.
grep -qxE '[0-9a-f]{64}' "$STATE_DIR/auth-secret" 2>/dev/null ||
    (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$STATE_DIR/auth-secret")
AUTH_LOCAL_SECRET=$(cat "$STATE_DIR/auth-secret")
export AUTH_ISSUER AUTH_AUDIENCE AUTH_LOCAL_SECRET
# Where metrics go (shared/src/telemetry.rs): empty, the pushgateway that start_monitoring starts;
# METRICS_BACKEND=cloudwatch writes CloudWatch EMF lines to the watch's log instead, as in AWS.
METRICS_BACKEND=${METRICS_BACKEND:-}
METRICS_NAMESPACE=${METRICS_NAMESPACE:-Stockroom/local}
# The relay (the only publisher) relays for its schedule's period and 5 s more, so the next
# invocation has started before this one ends, as template.yaml's 65 s for a 1-minute schedule.
RELAY_RUN_SECONDS=${RELAY_RUN_SECONDS:-$(( ${STOCKROOM_RELAY_EVERY:-20} + 5 ))}
RELAY_POLL_MILLISECONDS=${RELAY_POLL_MILLISECONDS:-200}
FUNCTION_ENV_VARS="INVENTORY_DATABASE_URL ORDER_DATABASE_URL STOCK_RESERVATION_DATABASE_URL NOTIFICATION_DATABASE_URL
    KAFKA_BROKERS AWS_ENDPOINT_URL_SQS AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY ALERTS_QUEUE_URL DEAD_LETTER_QUEUE_URL
    ORDER_PENDING_TIMEOUT_SECONDS PUSHGATEWAY_URL METRICS_BACKEND METRICS_NAMESPACE AWS_LAMBDA_LOG_FORMAT AUTH_MODE AUTH_ISSUER AUTH_AUDIENCE AUTH_LOCAL_SECRET
    RELAY_RUN_SECONDS RELAY_POLL_MILLISECONDS"
write_env_file() {
    local var
    for var in $FUNCTION_ENV_VARS; do printf '%s=%s\n' "$var" "${!var}"; done >"$1"
}

# Builds the functions and the local tools in the background (log: $STATE_DIR/build.log), so that
# the build overlaps the slow steps before start_watch needs it: tansu's build, whose last crates
# compile one at a time and leave a core idle, and the installs, which mostly wait on the network.
# wait_for_build waits for it; start_watch's own build is then a no-op.
start_build() {
    step "Building the functions in the background (log: $STATE_DIR/build.log)"
    (cd "$REPO_DIR" && cargo build --quiet --workspace --bins >"$STATE_DIR/build.log" 2>&1 9>&-) &
    BUILD_PID=$!
}
wait_for_build() {
    [ -n "${BUILD_PID:-}" ] || return 0
    wait "$BUILD_PID" || { cat "$STATE_DIR/build.log" >&2; die "building the functions failed"; }
    BUILD_PID=''
}

# How many instances of one function cargo lambda watch runs at most.
ROUTER_CONCURRENCY=4
# What a client waits at most (seconds) before the local gateway (tools/gateway, in front of
# cargo lambda watch) answers 504 itself: API Gateway's 30 s integration timeout for API routes;
# for the Lambda invoke API, which carries the schedules and the Kafka trigger, more than the
# longest invocation: the scheduled functions' 60 s timeout in template.yaml, and the events
# relay's planned run of about a minute (up to ~70 s) per invocation. cargo lambda watch's own
# --timeout is not used: in 1.9.2 it also cuts every idle instance's long poll, which kills the
# instance (docs/local-and-aws.md).
GATEWAY_TIMEOUT=${STOCKROOM_GATEWAY_TIMEOUT:-30}
GATEWAY_INVOKE_TIMEOUT=${STOCKROOM_GATEWAY_INVOKE_TIMEOUT:-120}
export STOCKROOM_GATEWAY_TIMEOUT=$GATEWAY_TIMEOUT STOCKROOM_GATEWAY_INVOKE_TIMEOUT=$GATEWAY_INVOKE_TIMEOUT
# cargo lambda watch itself listens this many ports above the gateway.
ROUTER_PORT_OFFSET=50

# Starts the router in the background on $1 (port): the local gateway there (pid in $2's
# -gateway.pid, log beside it), and cargo lambda watch behind it on $1 + ROUTER_PORT_OFFSET (pid in
# $2, log $3). Each is started when it does not run, so the watchdog restarts cargo lambda watch
# under a gateway that keeps accepting requests. WATCH_FLAGS adds flags to cargo lambda watch: the
# test stack sets --ignore-changes, because a reload kills the instances serving requests (those
# requests then get the gateway's 504).
start_watch() {
    local port=$1 pidfile=$2 log=$3
    local inner=$((port + ROUTER_PORT_OFFSET)) gateway_pidfile="${2%.pid}-gateway.pid"
    if pid_alive "$pidfile" && pid_alive "$gateway_pidfile"; then
        info "cargo lambda watch already runs (pid $(cat "$pidfile")) behind 127.0.0.1:$port"
        return
    fi
    wait_for_build
    step "Building the functions and the local gateway"
    (cd "$REPO_DIR" && cargo build --quiet --workspace --bins)
    if ! pid_alive "$gateway_pidfile"; then
        step "Starting the local gateway on 127.0.0.1:$port"
        STOCKROOM_GATEWAY_LISTEN=127.0.0.1:$port STOCKROOM_GATEWAY_ROUTER=127.0.0.1:$inner \
            start_daemon "$gateway_pidfile" "${gateway_pidfile%.pid}.log" \
            "${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/stockroom-gateway"
    fi
    if ! pid_alive "$pidfile"; then
        step "Starting cargo lambda watch on 127.0.0.1:$inner, behind the gateway"
        write_env_file "$STATE_DIR/functions-$port.env"
        : >"$log"
        # shellcheck disable=SC2086 # WATCH_FLAGS holds several flags, or none
        (cd "$REPO_DIR" && start_daemon "$pidfile" "$log" "$CARGO_LAMBDA" lambda watch \
            --invoke-address 127.0.0.1 --invoke-port "$inner" \
            --env-file "$STATE_DIR/functions-$port.env" ${WATCH_FLAGS:-} --concurrency "$ROUTER_CONCURRENCY")
    fi
    local i
    for i in $(seq 1 120); do
        if port_open "$port" && curl -s -o /dev/null "http://127.0.0.1:$inner/"; then
            info "listening (log: $log)"
            return
        fi
        pid_alive "$pidfile" || die "cargo lambda watch exited; see $log"
        pid_alive "$gateway_pidfile" || die "the local gateway exited; see ${gateway_pidfile%.pid}.log"
        sleep 1
    done
    die "cargo lambda watch did not listen on port $inner within 120 s; see $log"
}

# Stops the router started with pid file $1: cargo lambda watch and its gateway.
stop_router() {
    stop_watch "$1"
    stop_watch "${1%.pid}-gateway.pid"
}

# The live function instances of the router whose pid file is $1, one "FUNCTION PID" a line: the
# router's children. It starts each instance as `cargo run --bin FUNCTION`, which becomes the
# function's own binary (cargo execs it) once built.
router_instances() {
    local root
    root=$(cat "$1" 2>/dev/null) || return 0
    ps -o pid=,args= --ppid "$root" | awk '{
        name = ""
        for (i = 3; i <= NF; i++) if ($i == "--bin") name = $(i + 1)
        if (name == "") { n = split($2, path, "/"); name = path[n] }
        print name, $1 }'
}

# The functions of the router ($1 pid file, $2 log) that have no live instance left. cargo lambda
# watch 1.9.2 never replaces an instance whose process ended (killed, out of memory): it stays in
# its function's pool, which holds at most ROUTER_CONCURRENCY, and it blocks new instances while it
# was idle when it died. Once every instance started is dead, each request to the function gets the
# gateway's 504 after GATEWAY_TIMEOUT. Started instances are counted from the log, live ones from ps.
router_dead_functions() {
    local pidfile=$1 log=$2
    [ -s "$log" ] || return 0
    join -a 1 -e 0 -o 0,1.2,2.2 \
        <(sed -n 's/.*spawning function instance.*function="\([^"]*\)".*/\1/p' "$log" | sort | uniq -c | awk '{ print $2, $1 }' | sort) \
        <(router_instances "$pidfile" | awk '{ print $1 }' | sort | uniq -c | awk '{ print $2, $1 }' | sort) |
        awk '$3 == 0 { print $1 }'
}

# Starts the local stand-in for Lambda's Kafka event source mapping: it feeds the notifications
# function served on port $1, consuming as group $3. Built with the functions (start_watch).
start_trigger() {
    local port=$1 pidfile=$2 group=$3 log=$4
    if pid_alive "$pidfile"; then
        info "Kafka trigger already runs (pid $(cat "$pidfile"))"
        return
    fi
    step "Starting the Kafka trigger of the notifications function (group $group)"
    : >"$log"
    STOCKROOM_INVOKE_URL="http://127.0.0.1:$port/2015-03-31/functions/notifications/invocations" \
        STOCKROOM_TRIGGER_GROUP="$group" \
        start_daemon "$pidfile" "$log" "${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/stockroom-kafka-trigger"
}

# Starts the local subscriber of the alerts queue (what reads alerts in production): it prints
# each alert to $STATE_DIR/alerts.log and deletes it, so the queue does not grow without bound and
# slow moto down. Only localstack/up runs it: the tests read the queue themselves.
start_alerts_subscriber() {
    local pidfile="$STATE_DIR/alerts-subscriber.pid"
    if pid_alive "$pidfile"; then
        info "alerts subscriber already runs (pid $(cat "$pidfile"))"
        return
    fi
    step "Starting the alerts queue's subscriber (log: $STATE_DIR/alerts.log)"
    start_daemon "$pidfile" "$STATE_DIR/alerts.log" \
        "${CARGO_TARGET_DIR:-$REPO_DIR/target}/debug/stockroom-alerts-subscriber"
}

# The EventBridge schedules of template.yaml, and how often they run locally (seconds).
SCHEDULED_FUNCTIONS="orders-reconciler events-relay notifications-forwarder metrics-janitor stock-levels"
schedule_every() {
    case $1 in
        orders-reconciler) echo "${STOCKROOM_RECONCILE_EVERY:-60}" ;;
        events-relay) echo "${STOCKROOM_RELAY_EVERY:-20}" ;;
        notifications-forwarder) echo "${STOCKROOM_FORWARD_EVERY:-10}" ;;
        metrics-janitor) echo "${STOCKROOM_JANITOR_EVERY:-60}" ;;
        stock-levels) echo "${STOCKROOM_STOCK_LEVELS_EVERY:-10}" ;;
    esac
}

# Starts `localstack/schedule FUNCTION` in the background: what an EventBridge schedule does in AWS.
start_schedule() {
    local function=$1 every pidfile="$STATE_DIR/schedule-$1.pid"
    every=$(schedule_every "$function")
    if pid_alive "$pidfile"; then
        info "schedule for $function already runs (pid $(cat "$pidfile"))"
        return
    fi
    step "Scheduling $function every $every s"
    start_daemon "$pidfile" "$STATE_DIR/schedule-$function.log" "$REPO_DIR/localstack/schedule" "$function" "$every"
}

# Starts localstack/watchdog, which restarts any part of the stack that died or wedged.
start_watchdog() {
    local pidfile="$STATE_DIR/watchdog.pid"
    if pid_alive "$pidfile"; then
        info "watchdog already runs (pid $(cat "$pidfile"))"
        return
    fi
    step "Starting the watchdog"
    start_daemon "$pidfile" "$STATE_DIR/watchdog.log" "$REPO_DIR/localstack/watchdog"
}

# localstack/ctl and the watchdog take turns: ctl holds this lock while it stops, starts, freezes
# or thaws a part, the watchdog while it checks and repairs; a part that ctl stopped or froze is
# held (left alone by the watchdog) until ctl starts or thaws it.
CTL_LOCK="$STATE_DIR/ctl.lock"
held() { [ -e "$STATE_DIR/held-$1" ]; }
hold() { mkdir -p "$STATE_DIR" && : >"$STATE_DIR/held-$1"; }
release() { rm -f "$STATE_DIR/held-$1"; }

# One call to the SQS endpoint's query API, bounded to 10 s. The credential scope tells the local
# endpoint which service is meant; it checks no signature.
sqs_call() {
    curl -sf -m 10 -X POST "$AWS_ENDPOINT_URL_SQS/" \
        -H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/$AWS_REGION/sqs/aws4_request, SignedHeaders=host, Signature=0" \
        -d "$1&Version=2012-11-05"
}

# True when `METHOD URL [DATA]` gets an HTTP answer within 10 s, other than the local gateway's own
# 502 (router unreachable) and 504 (no answer within its bound).
http_answers() {
    local code
    code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' -X "$1" -H 'content-type: application/json' \
        ${3:+-d "$3"} "$2") || true
    case $code in 000 | 502 | 504) return 1 ;; esac
}

# The parts localstack/ctl and the watchdog act on, by name: broker, sqs, postgres, router.
start_part() {
    case $1 in
        broker) ensure_tansu >/dev/null && start_broker ;;
        sqs) ensure_moto >/dev/null && start_sqs ;;
        postgres) start_postgres ;;
        router) ensure_cargo_lambda >/dev/null && start_watch "$API_PORT" "$STATE_DIR/watch.pid" "$STATE_DIR/watch.log" ;;
    esac
}

stop_part() {
    case $1 in
        broker | sqs) stop_watch "$STATE_DIR/$1.pid" ;;
        postgres) stop_postgres ;;
        # cargo lambda watch alone: the gateway keeps accepting requests meanwhile.
        router) stop_watch "$STATE_DIR/watch.pid" ;;
    esac
}

part_port() {
    case $1 in
        broker) echo "$KAFKA_PORT" ;;
        sqs) echo "$SQS_PORT" ;;
        postgres) echo "$PG_PORT" ;;
        router) echo "$API_PORT" ;;
    esac
}

# Whether a part answers a bounded request (10 s at most): a topic list, ListQueues, a query; for
# the router a function that reads nothing (POST /api/orders with an empty object answers 422 at
# once) and /health.
part_answers() {
    case $1 in
        broker) timeout 10 "$TANSU" topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 ;;
        sqs) sqs_call "Action=ListQueues" >/dev/null ;;
        postgres) timeout 10 "$(pg_bin)/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt -c 'SELECT 1' >/dev/null 2>&1 ;;
        router)
            http_answers POST "http://127.0.0.1:$API_PORT/api/orders" '{}' &&
                http_answers GET "http://127.0.0.1:$API_PORT/health"
            ;;
    esac
}

# Starts `CMD ARGS…` in the background as a process group of its own (so stop_watch stops it with
# whatever it spawns), its output appended to LOG, its pid in PIDFILE. The one way the scripts
# start a long-running part.
start_daemon() {
    local pidfile=$1 log=$2
    shift 2
    # Not fd 9: a daemon must not inherit the ctl lock (CTL_LOCK) and hold it for its lifetime.
    setsid "$@" >>"$log" 2>&1 9>&- &
    echo $! >"$pidfile"
}

# Stops a process group started by start_daemon (cargo lambda watch, the reconciler timer).
stop_watch() {
    local pidfile=$1
    if pid_alive "$pidfile"; then
        step "Stopping $(basename "$pidfile" .pid) (pid $(cat "$pidfile"))"
        # setsid made it a process-group leader: stop it with the functions it spawned. CONT after
        # TERM, so a frozen (SIGSTOPped, wedged) group acts on it too.
        local group="-$(cat "$pidfile")" i
        kill -TERM -- "$group" 2>/dev/null || true
        kill -CONT -- "$group" 2>/dev/null || true
        for i in $(seq 1 20); do pid_alive "$pidfile" || break; sleep 0.5; done
        if pid_alive "$pidfile"; then
            kill -KILL -- "$group" 2>/dev/null || true
            for i in $(seq 1 20); do pid_alive "$pidfile" || break; sleep 0.25; done
        fi
    fi
    rm -f "$pidfile"
}

# Waits until GET $1 answers with status $2 (the functions compile on first use).
wait_for_status() {
    local url=$1 want=$2 got i
    for i in $(seq 1 300); do
        got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "$url" || true)
        [ "$got" = "$want" ] && return 0
        sleep 1
    done
    die "$url did not answer $want (last: $got)"
}

ensure_base_tools() {
    # OpenSSL's headers: librdkafka's TLS links it (shared/kafka).
    command -v curl >/dev/null && command -v python3 >/dev/null && command -v openssl >/dev/null &&
        pkg-config --exists openssl 2>/dev/null && return
    step "Installing curl, python3, openssl and OpenSSL's headers from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl python3 python3-venv \
        openssl libssl-dev pkg-config >/dev/null
}

# The template's checkers, all offline: cfn-lint and the SAM CLI share cargo-lambda's venv;
# checkov gets a venv of its own, because its pins (packaging) break schemathesis's.
SAM_CLI_VERSION=1.170.0
# Pinned too: each release learns of newly deprecated engine versions, which would fail the run.
CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.2.459
ensure_template_tools() {
    CFN_LINT="$TOOLS_DIR/venv/bin/cfn-lint"
    SAM="$TOOLS_DIR/venv/bin/sam"
    CHECKOV="$TOOLS_DIR/checkov/bin/checkov"
    if ! "$CFN_LINT" --version 2>/dev/null | grep -q "$CFN_LINT_VERSION" ||
        ! "$SAM" --version 2>/dev/null | grep -q "$SAM_CLI_VERSION"; then
        step "Installing cfn-lint $CFN_LINT_VERSION and the SAM CLI $SAM_CLI_VERSION from PyPI into $TOOLS_DIR/venv"
        "$TOOLS_DIR/venv/bin/pip" install -q "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"
    fi
    if ! "$CHECKOV" --version 2>/dev/null | grep -q "$CHECKOV_VERSION"; then
        step "Installing checkov $CHECKOV_VERSION from PyPI into $TOOLS_DIR/checkov"
        python3 -m venv "$TOOLS_DIR/checkov"
        "$TOOLS_DIR/checkov/bin/pip" install -q "checkov==$CHECKOV_VERSION"
    fi
    # Lambda runs the functions on arm64; the test run cross-compiles one as `sam build` does.
    # rustup fetches the target's standard library from static.rust-lang.org, which is not a
    # package registry: where that is out of reach, the check is skipped, and says so.
    ARM64_TARGET=true
    rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
        rustup target add aarch64-unknown-linux-gnu || ARM64_TARGET=false
}

# The fuzzer of localstack/fuzz, in the venv localstack/up keeps cargo-lambda, cfn-lint and moto in;
# pinned, so that a seed generates the same requests every time. localstack/test installs it in
# the background with the template's checkers.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
    SCHEMATHESIS="$TOOLS_DIR/venv/bin/schemathesis"
    if [ -x "$SCHEMATHESIS" ] && "$SCHEMATHESIS" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
        info "schemathesis $SCHEMATHESIS_VERSION is installed"
        return
    fi
    step "Installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $TOOLS_DIR/venv"
    ensure_base_tools
    [ -x "$TOOLS_DIR/venv/bin/pip" ] || { mkdir -p "$TOOLS_DIR"; python3 -m venv "$TOOLS_DIR/venv"; }
    "$TOOLS_DIR/venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
}

# tansu, a Kafka-compatible broker in Rust: built once per machine (about 7 minutes on 2 cores)
# with the storage engines its default build lacks, and reused while the pinned version matches.
# libsql is sqlite://, the stack's; dynostore is memory://, localstack/bench's, and costs no
# crate: `cargo tree` lists the same 422 crates with libsql alone, since tansu-schema pulls
# object_store in whatever the features.
ensure_tansu() {
    TANSU="$TOOLS_DIR/tansu-$TANSU_VERSION/bin/tansu"
    if [ -x "$TANSU" ]; then
        info "tansu $TANSU_VERSION is installed"
        return
    fi
    step "Building tansu $TANSU_VERSION (Kafka-compatible broker; once per machine, about 7 minutes)"
    # A sign of life every 25 crates compiled, and cargo's errors in full.
    local started=$SECONDS
    set +o pipefail
    # opt-level 1, not the release default of 3: LLVM's work is most of this build (6 min 20 s
    # alone on 2 cores so), and a broker on loopback for tests and a development stack needs
    # no more speed than that gives.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
        CARGO_TARGET_DIR="$TOOLS_DIR/tansu-build" cargo install tansu --version "$TANSU_VERSION" --locked \
        --features dynostore,libsql --root "$TOOLS_DIR/tansu-$TANSU_VERSION" 2>&1 |
        awk '/^ *Compiling / { if (++n % 25 == 0) { printf "    %d crates compiled\n", n; fflush() } }
                                  /^(error|warning: build failed)/ || failed { failed = 1; print }'
    set -o pipefail
    [ -x "$TANSU" ] || die "building tansu failed (see the errors above)"
    info "tansu built in $(( (SECONDS - started) / 60 )) min"
    rm -rf "$TOOLS_DIR/tansu-build"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# How long the local broker keeps a message (minutes). tansu 0.6 keeps every record in its SQLite
# file for ever, unless the topic's cleanup.policy is delete: then its maintenance, every 10
# minutes, deletes the records older than the topic's retention.ms, and SQLite reuses their pages.
# The file then holds about this long of traffic. The Kafka trigger consumes within seconds; what
# it has not consumed after this long (a trigger stopped for hours) is lost, as with Kafka's own
# retention.
BROKER_RETENTION_MINUTES=${STOCKROOM_BROKER_RETENTION_MINUTES:-120}
topic_configs() {
    printf -- '--config %s ' cleanup.policy=delete "retention.ms=$((BROKER_RETENTION_MINUTES * 60000))"
}

# Before the broker starts: gives the topics of an existing file that retention (topics created
# before it kept everything, and tansu has no command to change a topic's configuration), and
# deletes the records it has expired, as tansu's maintenance would. That maintenance runs first at
# start-up, holding tansu's only database connection while it deletes: measured on a 147 MB file
# whose 360,000 records had all expired, tansu answered nothing for 54 s (the watchdog restarts a
# broker after three 10 s probes missed in a row); deleted here first, it answered in 0.4 s.
set_topic_retention() {
    local db="$STATE_DIR/tansu.db"
    [ -s "$db" ] || return 0
    # shellcheck disable=SC2086 # one topic a word
    python3 - "$db" "$((BROKER_RETENTION_MINUTES * 60000))" $TOPICS <<'EOF' ||
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
retention_ms, topics = int(sys.argv[2]), sys.argv[3:]
marks = ",".join("?" * len(topics))
with db:
    for name, value in (("cleanup.policy", "delete"), ("retention.ms", str(retention_ms))):
        db.executemany(
            "INSERT INTO topic_configuration (topic, name, value) SELECT id, ?, ? FROM topic"
            " WHERE name = ? ON CONFLICT (topic, name) DO UPDATE SET value = excluded.value",
            [(name, value, topic) for topic in topics],
        )
    db.execute(
        "DELETE FROM record WHERE timestamp < ? AND topition IN (SELECT tp.id FROM topition tp"
        f" JOIN topic t ON t.id = tp.topic WHERE t.name IN ({marks}))",
        [int(time.time() * 1000) - retention_ms, *topics],
    )
EOF
        info "could not apply the topics' retention to $db"
}

start_broker() {
    if port_open "$KAFKA_PORT"; then
        info "a broker already answers on 127.0.0.1:$KAFKA_PORT"
    else
        set_topic_retention
        step "Starting tansu on 127.0.0.1:$KAFKA_PORT"
        # Both listener flags: by default tansu listens on every interface. SQLite storage keeps
        # what the broker acknowledged (messages, committed offsets) across a restart.
        # tansu reads the SQLite path relative to its working directory.
        (cd "$STATE_DIR" && start_daemon "$STATE_DIR/broker.pid" "$STATE_DIR/broker.log" \
            "$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
            --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine "sqlite://tansu.db")
        local i
        for i in $(seq 1 50); do port_open "$KAFKA_PORT" && break; sleep 0.2; done
        port_open "$KAFKA_PORT" || die "tansu did not listen on $KAFKA_PORT; see $STATE_DIR/broker.log"
    fi
    local topic
    for topic in $TOPICS; do
        # shellcheck disable=SC2046 # topic_configs gives several words
        if "$TANSU" topic create "$topic" --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 3 \
            $(topic_configs) >/dev/null 2>&1; then
            info "created topic $topic (kept $BROKER_RETENTION_MINUTES min)"
        fi
    done
}

ensure_moto() {
    MOTO="$TOOLS_DIR/venv/bin/moto_server"
    # The SQS client's TLS test (shared/sqs/tests/https.rs) starts one of its own.
    export STOCKROOM_MOTO="$MOTO"
    if [ -x "$MOTO" ]; then
        info "moto server is installed"
        return
    fi
    step "Installing moto's server (SQS endpoint) from PyPI into $TOOLS_DIR/venv"
    "$TOOLS_DIR/venv/bin/pip" install -q 'moto[server]'
}

start_sqs() {
    if port_open "$SQS_PORT"; then
        info "an SQS endpoint already answers on 127.0.0.1:$SQS_PORT"
    else
        step "Starting moto (SQS) on 127.0.0.1:$SQS_PORT"
        : >"$STATE_DIR/sqs.log"
        start_daemon "$STATE_DIR/sqs.pid" "$STATE_DIR/sqs.log" "$MOTO" -H 127.0.0.1 -p "$SQS_PORT"
        local i
        for i in $(seq 1 100); do port_open "$SQS_PORT" && break; sleep 0.2; done
        port_open "$SQS_PORT" || die "moto did not listen on $SQS_PORT; see $STATE_DIR/sqs.log"
    fi
    local queue
    for queue in stockroom-alerts stockroom-dead-letters; do
        # CreateQueue is idempotent for the same attributes.
        sqs_call "Action=CreateQueue&QueueName=$queue" | grep -q "<QueueUrl>" ||
            die "could not create queue $queue at $AWS_ENDPOINT_URL_SQS"
    done
    info "queues stockroom-alerts, stockroom-dead-letters"
}

ensure_stack() {
    step "Checking tools"
    ensure_base_tools
    start_build
    ensure_postgres_installed
    ensure_cargo_lambda
    ensure_tansu
    ensure_moto
    start_postgres
    create_databases
    migrate
    start_broker
    start_sqs
}

# Monitoring: pushgateway, Prometheus, Alertmanager (docs/observability.md).
source "$REPO_DIR/localstack/monitoring.sh"
