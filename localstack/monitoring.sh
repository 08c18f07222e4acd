# Monitoring for the local stack: a Prometheus pushgateway that every function pushes its metrics to,
# Prometheus scraping it with the rules of monitoring/rules/, and Alertmanager sending alerts to a
# webhook. Sourced by lib.sh (after its helpers: step, info, die, pid_alive, port_open, stop_watch);
# docs/observability.md explains the design. Every setting can be overridden from the environment:
#   STOCKROOM_PUSHGATEWAY_PORT (9091), STOCKROOM_PROMETHEUS_PORT (9090),
#   STOCKROOM_ALERTMANAGER_PORT (9093): where each listens, on 127.0.0.1 only;
#   STOCKROOM_ALERT_WEBHOOK_PORT (5001), STOCKROOM_ALERT_WEBHOOK_URL
#   (http://127.0.0.1:$STOCKROOM_ALERT_WEBHOOK_PORT/alerts): where Alertmanager posts alerts.
# Exports PUSHGATEWAY_URL, PROMETHEUS_URL, ALERTMANAGER_URL and STOCKROOM_ALERT_WEBHOOK_PORT, which
# the functions (PUSHGATEWAY_URL) and e2e/tests/alerting.rs read.

PUSHGATEWAY_PORT=${STOCKROOM_PUSHGATEWAY_PORT:-9091}
PROMETHEUS_PORT=${STOCKROOM_PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${STOCKROOM_ALERTMANAGER_PORT:-9093}
ALERT_WEBHOOK_PORT=${STOCKROOM_ALERT_WEBHOOK_PORT:-5001}
ALERT_WEBHOOK_URL=${STOCKROOM_ALERT_WEBHOOK_URL:-http://127.0.0.1:$ALERT_WEBHOOK_PORT/alerts}
PUSHGATEWAY_URL=http://127.0.0.1:$PUSHGATEWAY_PORT
PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
ALERTMANAGER_URL=http://127.0.0.1:$ALERTMANAGER_PORT
STOCKROOM_ALERT_WEBHOOK_PORT=$ALERT_WEBHOOK_PORT
export PUSHGATEWAY_URL PROMETHEUS_URL ALERTMANAGER_URL STOCKROOM_ALERT_WEBHOOK_PORT
# Rendered configuration, Prometheus's TSDB, Alertmanager's silences and the pushgateway's
# persistence file; pid files and logs sit in $STATE_DIR like the rest of the stack's.
MONITORING_DIR=$STATE_DIR/monitoring
MONITORING_RULES="$REPO_DIR/monitoring/rules/stockroom.rules.yml"
MONITORING_RULE_TESTS="$REPO_DIR/monitoring/rules/stockroom.rules.test.yml"

# Debian's packages (Prometheus 2.42, pushgateway 1.5, Alertmanager 0.25 on bookworm), and the
# font tools/render-dashboards draws its text with.
DASHBOARD_FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
ensure_monitoring_installed() {
    if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus-pushgateway ] &&
        [ -x /usr/bin/prometheus-alertmanager ] && [ -x /usr/bin/amtool ] && [ -f "$DASHBOARD_FONT" ]; then
        info "Prometheus $(/usr/bin/prometheus --version 2>&1 | awk 'NR == 1 {print $3}'), pushgateway and Alertmanager are installed"
        return
    fi
    step "Installing Prometheus, the pushgateway, Alertmanager and a font from Debian's packages"
    [ "$(id -u)" = 0 ] ||
        die "Prometheus is missing; run as root or install prometheus, prometheus-pushgateway and prometheus-alertmanager"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # The packages' scripts try to start system services (on every interface, on the default ports);
    # where that cannot happen (no init system) apt says so and carries on. Where it did happen, stop
    # and disable them again: the stack runs its own, on loopback, with its own configuration.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        prometheus prometheus-pushgateway prometheus-alertmanager fonts-dejavu-core >/dev/null 2>&1 ||
        die "apt-get install prometheus prometheus-pushgateway prometheus-alertmanager fonts-dejavu-core failed"
    if [ -d /run/systemd/system ]; then
        systemctl disable --now prometheus prometheus-pushgateway prometheus-alertmanager >/dev/null 2>&1 || true
    fi
    [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus-pushgateway ] &&
        [ -x /usr/bin/prometheus-alertmanager ] && [ -f "$DASHBOARD_FONT" ] ||
        die "the Prometheus packages (or fonts-dejavu-core) did not install their files"
}

# Writes monitoring/prometheus.yml and monitoring/alertmanager.yml into $1 with the placeholders
# replaced by this stack's addresses.
render_monitoring_config() {
    local dir=$1
    mkdir -p "$dir"
    # Escaped for sed's replacement text.
    local rules webhook
    rules=$(printf '%s' "$MONITORING_RULES" | sed 's/[\\|&]/\\&/g')
    webhook=$(printf '%s' "$ALERT_WEBHOOK_URL" | sed 's/[\\|&]/\\&/g')
    sed -e "s|@PUSHGATEWAY_ADDRESS@|127.0.0.1:$PUSHGATEWAY_PORT|g" \
        -e "s|@PROMETHEUS_ADDRESS@|127.0.0.1:$PROMETHEUS_PORT|g" \
        -e "s|@ALERTMANAGER_ADDRESS@|127.0.0.1:$ALERTMANAGER_PORT|g" \
        -e "s|@RULES_FILE@|$rules|g" \
        "$REPO_DIR/monitoring/prometheus.yml" >"$dir/prometheus.yml"
    sed -e "s|@ALERT_WEBHOOK_URL@|$webhook|g" "$REPO_DIR/monitoring/alertmanager.yml" >"$dir/alertmanager.yml"
}

# Runs one check (the command after WHAT and OK): prints OK when it passes, else WHAT and the
# command's output; returns its status.
run_check() {
    local what=$1 ok=$2 out
    shift 2
    if out=$("$@" 2>&1); then
        info "$ok"
    else
        info "$what failed:"
        printf '%s\n' "$out" | sed 's/^/      /'
        return 1
    fi
}

# Checks the rules (syntax, then the unit tests of stockroom.rules.test.yml) and the rendered
# configuration. Prints what failed; returns non-zero on any failure.
check_rules() {
    step "Checking the Prometheus rules and configuration (promtool, amtool)"
    local failed=0 dir
    run_check "promtool check rules $MONITORING_RULES" \
        "rules:        $(grep -cE '^ *- (alert|record):' "$MONITORING_RULES") rules valid" \
        promtool check rules "$MONITORING_RULES" || failed=1
    run_check "promtool test rules $MONITORING_RULE_TESTS" \
        "rule tests:   $(grep -c '^  - name:' "$MONITORING_RULE_TESTS") cases passed (promtool test rules)" \
        promtool test rules "$MONITORING_RULE_TESTS" || failed=1
    dir=$(mktemp -d)
    render_monitoring_config "$dir"
    run_check "promtool check config (monitoring/prometheus.yml, rendered)" "prometheus.yml is valid" \
        promtool check config "$dir/prometheus.yml" || failed=1
    run_check "amtool check-config (monitoring/alertmanager.yml, rendered)" "alertmanager.yml is valid" \
        amtool check-config "$dir/alertmanager.yml" || failed=1
    rm -rf "$dir"
    if [ "$failed" != 0 ]; then
        printf '%serror: the monitoring rules or configuration are broken (see above)%s\n' "$RED" "$PLAIN" >&2
        return 1
    fi
}

# Starts NAME (a pid file and log in $STATE_DIR) listening on PORT with the command that follows,
# unless it already runs; then waits until it answers /-/ready. A process of ours that already runs is
# reused, and given SIGHUP when RELOAD is "reload" so it rereads its (re-rendered) configuration.
start_monitoring_daemon() {
    local name=$1 port=$2 reload=$3
    shift 3
    local pidfile="$STATE_DIR/$name.pid" log="$STATE_DIR/$name.log"
    if pid_alive "$pidfile"; then
        info "$name already runs (pid $(cat "$pidfile")) on 127.0.0.1:$port"
        if [ "$reload" = reload ]; then
            kill -HUP "$(cat "$pidfile")"
            info "  and reloads its configuration"
        fi
    elif port_open "$port"; then
        curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$port/-/ready" ||
            die "port $port is taken by something that is not a ready $name; set another port"
        info "a $name already answers on 127.0.0.1:$port (not started by this stack: its configuration may differ)"
        return
    else
        step "Starting $name on 127.0.0.1:$port"
        : >"$log"
        start_daemon "$pidfile" "$log" "$@"
    fi
    local i
    for i in $(seq 1 120); do
        curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/-/ready" && return 0
        pid_alive "$pidfile" || die "$name exited; see $log"
        sleep 0.25
    done
    die "$name did not answer http://127.0.0.1:$port/-/ready within 30 s; see $log"
}

start_monitoring() {
    mkdir -p "$MONITORING_DIR"
    render_monitoring_config "$MONITORING_DIR"
    local out
    out=$(promtool check config "$MONITORING_DIR/prometheus.yml" 2>&1) ||
        die "$(printf 'the Prometheus configuration is invalid:\n%s' "$out")"
    start_monitoring_daemon pushgateway "$PUSHGATEWAY_PORT" keep \
        /usr/bin/prometheus-pushgateway --web.listen-address="127.0.0.1:$PUSHGATEWAY_PORT" \
        --persistence.file="$MONITORING_DIR/pushgateway.data" --persistence.interval=1m
    start_monitoring_daemon alertmanager "$ALERTMANAGER_PORT" reload \
        /usr/bin/prometheus-alertmanager --config.file="$MONITORING_DIR/alertmanager.yml" \
        --storage.path="$MONITORING_DIR/alertmanager-data" \
        --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" --cluster.listen-address=
    start_monitoring_daemon prometheus "$PROMETHEUS_PORT" reload \
        /usr/bin/prometheus --config.file="$MONITORING_DIR/prometheus.yml" \
        --storage.tsdb.path="$MONITORING_DIR/prometheus-data" --storage.tsdb.retention.time=2d \
        --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
    info "Pushgateway:  $PUSHGATEWAY_URL"
    info "Prometheus:   $PROMETHEUS_URL (rules: $PROMETHEUS_URL/rules, alerts: $PROMETHEUS_URL/alerts)"
    info "Alertmanager: $ALERTMANAGER_URL (sends alerts to $ALERT_WEBHOOK_URL)"
}

stop_monitoring() {
    stop_watch "$STATE_DIR/prometheus.pid"
    stop_watch "$STATE_DIR/alertmanager.pid"
    stop_watch "$STATE_DIR/pushgateway.pid"
}
