/*
 * policy.c - the pressure policy: thresholds with defaults, the policy file
 * parser, and the state machine that turns readings into OK, CONSTRAINED or
 * CRITICAL with hysteresis (enter at one level, leave at another, and only
 * after the lower state has held for the dwell time or, from CRITICAL, the
 * cooldown). No I/O but fedl_policy_load's read of the file; the time is
 * the readings'.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedl/mem.h"
#include "fedl/monitor.h"

#define MIB (1024ull * 1024ull)
#define MS_NS 1000000ull

const char *fedl_pressure_name(fedl_pressure p)
{
    switch (p) {
    case FEDL_PRESSURE_OK:
        return "ok";
    case FEDL_PRESSURE_CONSTRAINED:
        return "constrained";
    case FEDL_PRESSURE_CRITICAL:
        return "critical";
    }
    return "unknown";
}

fedl_policy fedl_policy_defaults(void)
{
    fedl_policy p;
    memset(&p, 0, sizeof p);
    p.mem_constrained_pct = 15.0;
    p.mem_constrained_leave_pct = 20.0;
    p.mem_critical_pct = 8.0;
    p.mem_critical_leave_pct = 15.0;
    p.psi_mem_some_pct = 20.0;
    p.psi_mem_full_pct = 10.0;
    p.psi_cpu_some_pct = 0.0;
    p.psi_leave_factor = 0.5;
    p.load_per_cpu = 0.0;
    p.temp_constrained_c = 75.0;
    p.temp_critical_c = 82.0;
    p.temp_leave_c = 5.0;
    p.throttle_constrained = 1;
    p.disk_floor_bytes = 64 * MIB;
    p.disk_leave_bytes = 96 * MIB;
    p.dwell_ms = 2000;
    p.cooldown_ms = 5000;
    p.interval_ms = 500;
    return p;
}

/* ------------------------------------------------------------ checking */

static fedl_status check_percent(const char *name, double value, fedl_error *err)
{
    if (!(value >= 0.0 && value <= 100.0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "policy: %s = %g: not a percentage (0-100)", name, value);
    return FEDL_OK;
}

static fedl_status check_pair(const char *enter_name, double enter, const char *leave_name,
                              double leave, int leave_above, fedl_error *err)
{
    if (enter > 0.0 && (leave_above ? leave < enter : leave > enter))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "policy: %s = %g must be %s %s = %g (a state is left on the far side "
                              "of where it is entered)",
                              leave_name, leave, leave_above ? "at least" : "at most", enter_name,
                              enter);
    return FEDL_OK;
}

fedl_status fedl_policy_check(const fedl_policy *p, fedl_error *err)
{
    const struct {
        const char *name;
        double value;
    } percents[] = {{"mem_constrained_pct", p->mem_constrained_pct},
                    {"mem_constrained_leave_pct", p->mem_constrained_leave_pct},
                    {"mem_critical_pct", p->mem_critical_pct},
                    {"mem_critical_leave_pct", p->mem_critical_leave_pct},
                    {"psi_mem_some_pct", p->psi_mem_some_pct},
                    {"psi_mem_full_pct", p->psi_mem_full_pct},
                    {"psi_cpu_some_pct", p->psi_cpu_some_pct}};
    fedl_status st = FEDL_OK;
    for (size_t i = 0; i < sizeof percents / sizeof percents[0] && st == FEDL_OK; i++)
        st = check_percent(percents[i].name, percents[i].value, err);
    if (st == FEDL_OK)
        st = check_pair("mem_constrained_pct", p->mem_constrained_pct, "mem_constrained_leave_pct",
                        p->mem_constrained_leave_pct, 1, err);
    if (st == FEDL_OK)
        st = check_pair("mem_critical_pct", p->mem_critical_pct, "mem_critical_leave_pct",
                        p->mem_critical_leave_pct, 1, err);
    if (st != FEDL_OK)
        return st;
    if (p->mem_critical_pct > 0.0 && p->mem_constrained_pct > 0.0 &&
        p->mem_critical_pct > p->mem_constrained_pct)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "policy: mem_critical_pct = %g is above mem_constrained_pct = %g",
                              p->mem_critical_pct, p->mem_constrained_pct);
    if (p->temp_critical_c > 0.0 && p->temp_constrained_c > 0.0 &&
        p->temp_critical_c < p->temp_constrained_c)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "policy: temp_critical_c = %g is below temp_constrained_c = %g",
                              p->temp_critical_c, p->temp_constrained_c);
    if (!(p->psi_leave_factor > 0.0 && p->psi_leave_factor <= 1.0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "policy: psi_leave_factor = %g: must be in (0, 1]",
                              p->psi_leave_factor);
    if (!(p->temp_leave_c >= 0.0) || !(p->load_per_cpu >= 0.0) || !(p->temp_critical_c >= 0.0) ||
        !(p->temp_constrained_c >= 0.0))
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "policy: temperatures and load must not be negative");
    if (p->disk_leave_bytes < p->disk_floor_bytes)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "policy: disk_leave_bytes = %llu is below disk_floor_bytes = %llu",
                              (unsigned long long)p->disk_leave_bytes,
                              (unsigned long long)p->disk_floor_bytes);
    if (p->interval_ms < 10 || p->interval_ms > 3600000)
        return fedl_error_set(err, FEDL_ERR_INVALID_ARG,
                              "policy: interval_ms = %llu: must be 10 ms to 1 hour",
                              (unsigned long long)p->interval_ms);
    return FEDL_OK;
}

/* ------------------------------------------------------------- parsing */

typedef enum value_kind { PERCENT, NUMBER, FLAG, BYTES, MILLIS } value_kind;

typedef struct policy_key {
    const char *name;
    value_kind kind;
    size_t offset;
} policy_key;

#define KEY(field, kind)                                                                           \
    {                                                                                              \
#field, kind, offsetof(fedl_policy, field)                                                 \
    }
static const policy_key policy_keys[] = {
    KEY(mem_constrained_pct, PERCENT), KEY(mem_constrained_leave_pct, PERCENT),
    KEY(mem_critical_pct, PERCENT),    KEY(mem_critical_leave_pct, PERCENT),
    KEY(psi_mem_some_pct, PERCENT),    KEY(psi_mem_full_pct, PERCENT),
    KEY(psi_cpu_some_pct, PERCENT),    KEY(psi_leave_factor, NUMBER),
    KEY(load_per_cpu, NUMBER),         KEY(temp_constrained_c, NUMBER),
    KEY(temp_critical_c, NUMBER),      KEY(temp_leave_c, NUMBER),
    KEY(throttle_constrained, FLAG),   KEY(disk_floor_bytes, BYTES),
    KEY(disk_leave_bytes, BYTES),      KEY(dwell_ms, MILLIS),
    KEY(cooldown_ms, MILLIS),          KEY(interval_ms, MILLIS),
};
#undef KEY

/* A finite decimal number, then an optional suffix; *rest points past the
 * number. 0 on no number. */
static int parse_double(const char *text, double *out, const char **rest)
{
    char *end;
    errno = 0;
    *out = strtod(text, &end);
    if (end == text || errno != 0 || !isfinite(*out) || text[0] == '+' || text[0] == ' ' ||
        (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')))
        return 0;
    *rest = end;
    return 1;
}

/* One value into p's field; returns a message (static text) on failure. */
static const char *set_value(fedl_policy *p, const policy_key *key, const char *text)
{
    char *field = (char *)p + key->offset;
    const char *rest = NULL;
    double number;
    switch (key->kind) {
    case PERCENT:
    case NUMBER:
        if (!parse_double(text, &number, &rest) ||
            !(*rest == '\0' || (key->kind == PERCENT && strcmp(rest, "%") == 0)))
            return key->kind == PERCENT ? "expected a percentage such as 15 or 15%"
                                        : "expected a number";
        memcpy(field, &number, sizeof number);
        return NULL;
    case FLAG: {
        int flag;
        if (strcmp(text, "1") == 0 || strcmp(text, "yes") == 0 || strcmp(text, "true") == 0)
            flag = 1;
        else if (strcmp(text, "0") == 0 || strcmp(text, "no") == 0 || strcmp(text, "false") == 0)
            flag = 0;
        else
            return "expected 1, 0, yes, no, true or false";
        memcpy(field, &flag, sizeof flag);
        return NULL;
    }
    case BYTES: {
        size_t bytes;
        uint64_t value;
        if (fedl_parse_size(text, &bytes, NULL) != FEDL_OK)
            return "expected a size such as 64M";
        value = bytes;
        memcpy(field, &value, sizeof value);
        return NULL;
    }
    case MILLIS: {
        uint64_t value;
        if (!parse_double(text, &number, &rest) || number < 0.0)
            return "expected a duration such as 500, 500ms or 2s";
        if (strcmp(rest, "s") == 0)
            number *= 1000.0;
        else if (*rest != '\0' && strcmp(rest, "ms") != 0)
            return "expected a duration such as 500, 500ms or 2s";
        if (number > 86400000.0)
            return "a duration of at most one day";
        value = (uint64_t)(number + 0.5);
        memcpy(field, &value, sizeof value);
        return NULL;
    }
    }
    return "unknown kind";
}

static const policy_key *find_key(const char *name, size_t length)
{
    for (size_t i = 0; i < sizeof policy_keys / sizeof policy_keys[0]; i++)
        if (strlen(policy_keys[i].name) == length && memcmp(policy_keys[i].name, name, length) == 0)
            return &policy_keys[i];
    return NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Printable copy of untrusted bytes for a message. */
static void quote(const char *s, size_t n, char *out, size_t size)
{
    size_t i;
    for (i = 0; i < n && i + 1 < size; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[i] = '\0';
}

/* One line "key = value" (comments and blanks already handled). */
static fedl_status parse_line(const char *line, size_t length, const char *name, size_t line_no,
                              fedl_policy *p, fedl_error *err)
{
    const char *end = line + length, *key = line, *eq, *value;
    const policy_key *k;
    size_t key_len, value_len;
    char shown[64], text[64];
    const char *problem;
    while (key < end && is_space(*key))
        key++;
    eq = memchr(key, '=', (size_t)(end - key));
    if (eq == NULL)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu:%zu: expected 'key = value'", name,
                              line_no, (size_t)(key - line) + 1);
    key_len = (size_t)(eq - key);
    while (key_len > 0 && is_space(key[key_len - 1]))
        key_len--;
    k = find_key(key, key_len);
    if (k == NULL) {
        quote(key, key_len, shown, sizeof shown);
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu:%zu: unknown key '%s'", name, line_no,
                              (size_t)(key - line) + 1, shown);
    }
    value = eq + 1;
    while (value < end && is_space(*value))
        value++;
    value_len = (size_t)(end - value);
    while (value_len > 0 && is_space(value[value_len - 1]))
        value_len--;
    quote(value, value_len, shown, sizeof shown);
    if (value_len == 0 || value_len >= sizeof text || memchr(value, '\0', value_len) != NULL)
        problem = value_len == 0 ? "a value is missing" : "value too long";
    else {
        memcpy(text, value, value_len);
        text[value_len] = '\0';
        problem = set_value(p, k, text);
    }
    if (problem != NULL)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s:%zu:%zu: %s: %s (got '%s')", name, line_no,
                              (size_t)(value - line) + 1, k->name, problem, shown);
    return FEDL_OK;
}

fedl_status fedl_policy_parse(const char *text, size_t length, const char *name, fedl_policy *p,
                              fedl_error *err)
{
    fedl_policy parsed = *p;
    const char *at = text, *end = text + length;
    size_t line_no = 0;
    fedl_error inner;
    if (name == NULL)
        name = "policy";
    while (at < end) {
        const char *newline = memchr(at, '\n', (size_t)(end - at));
        const char *line_end = newline != NULL ? newline : end;
        const char *hash = memchr(at, '#', (size_t)(line_end - at));
        const char *content_end = hash != NULL ? hash : line_end;
        const char *first = at;
        line_no++;
        while (first < content_end && is_space(*first))
            first++;
        if (first < content_end) {
            fedl_status st =
                parse_line(at, (size_t)(content_end - at), name, line_no, &parsed, err);
            if (st != FEDL_OK)
                return st;
        }
        at = newline != NULL ? newline + 1 : end;
    }
    if (fedl_policy_check(&parsed, &inner) != FEDL_OK)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "%s: %s", name, inner.message);
    *p = parsed;
    return FEDL_OK;
}

fedl_status fedl_policy_load(const char *path, fedl_policy *p, fedl_error *err)
{
    char text[16384];
    size_t length;
    FILE *f = fopen(path, "rb");
    int failed;
    if (f == NULL)
        return fedl_error_set(err, FEDL_ERR_IO, "policy %s: %s", path, strerror(errno));
    length = fread(text, 1, sizeof text, f);
    failed = ferror(f);
    fclose(f);
    if (failed)
        return fedl_error_set(err, FEDL_ERR_IO, "policy %s: read error", path);
    if (length == sizeof text)
        return fedl_error_set(err, FEDL_ERR_FORMAT, "policy %s: longer than %zu bytes", path,
                              sizeof text - 1);
    return fedl_policy_parse(text, length, path, p, err);
}

/* ------------------------------------------------------- the state machine */

void fedl_policy_init(fedl_policy_state *s, const fedl_policy *p)
{
    memset(s, 0, sizeof *s);
    s->policy = *p;
    s->state = FEDL_PRESSURE_OK;
}

void fedl_policy_set_reserve(fedl_policy_state *s, uint64_t bytes)
{
    s->reserve_bytes = bytes;
}

/* Where the readings put one signal: `enter` is the highest state whose
 * enter level it crosses, `hold` the highest whose leave level it has not
 * yet gone back past. The reason of the first signal at each level is
 * kept. */
typedef struct verdict {
    fedl_pressure enter, hold;
    char why[3][FEDL_PROBE_TEXT_MAX];
} verdict;

static void note(verdict *v, fedl_pressure enter, fedl_pressure hold, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void note(verdict *v, fedl_pressure enter, fedl_pressure hold, const char *fmt, ...)
{
    fedl_pressure level = enter > hold ? enter : hold;
    va_list args;
    if (enter > v->enter)
        v->enter = enter;
    if (hold > v->hold)
        v->hold = hold;
    char text[FEDL_PROBE_TEXT_MAX];
    if (level == FEDL_PRESSURE_OK)
        return;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    /* the signal explains every level up to its own */
    for (int l = FEDL_PRESSURE_CONSTRAINED; l <= (int)level; l++)
        if (v->why[l][0] == '\0')
            memcpy(v->why[l], text, sizeof text);
}

/* A signal where more is worse: enter above `enter`, leave below `leave`. */
static void rising(verdict *v, double value, double constrained, double constrained_leave,
                   double critical, double critical_leave, const char *what, const char *unit)
{
    fedl_pressure enter = FEDL_PRESSURE_OK, hold = FEDL_PRESSURE_OK;
    double limit = 0.0;
    if (constrained > 0.0 && value > constrained_leave) {
        hold = FEDL_PRESSURE_CONSTRAINED;
        limit = constrained;
    }
    if (constrained > 0.0 && value > constrained)
        enter = FEDL_PRESSURE_CONSTRAINED;
    if (critical > 0.0 && value > critical_leave) {
        hold = FEDL_PRESSURE_CRITICAL;
        limit = critical;
    }
    if (critical > 0.0 && value > critical)
        enter = FEDL_PRESSURE_CRITICAL;
    if (hold != FEDL_PRESSURE_OK)
        note(v, enter, hold, "%s %.1f%s %s %g%s", what, value, unit,
             value > limit ? ">" : "above the leave level of", limit, unit);
}

static void judge_memory(const fedl_policy_state *s, const fedl_readings *r, verdict *v)
{
    const fedl_policy *p = &s->policy;
    double percent, held_percent;
    uint64_t available = fedl_readings_mem_available(r, &percent), total;
    fedl_pressure enter = FEDL_PRESSURE_OK, hold = FEDL_PRESSURE_OK;
    char where[FEDL_PROBE_TEXT_MAX], a[32], b[32];
    if (available == 0 && percent >= 100.0)
        return; /* nothing known */
    /* The reserve counts as used when deciding whether a state may be left. */
    total = percent > 0.0 ? (uint64_t)((double)available * 100.0 / percent) : 0;
    held_percent = percent;
    if (s->reserve_bytes > 0 && total > 0)
        held_percent = available > s->reserve_bytes
                           ? (double)(available - s->reserve_bytes) * 100.0 / (double)total
                           : 0.0;
    if (p->mem_constrained_pct > 0.0 && percent < p->mem_constrained_pct)
        enter = FEDL_PRESSURE_CONSTRAINED;
    if (p->mem_critical_pct > 0.0 && percent < p->mem_critical_pct)
        enter = FEDL_PRESSURE_CRITICAL;
    if (p->mem_constrained_pct > 0.0 && held_percent < p->mem_constrained_leave_pct)
        hold = FEDL_PRESSURE_CONSTRAINED;
    if (p->mem_critical_pct > 0.0 && held_percent < p->mem_critical_leave_pct)
        hold = FEDL_PRESSURE_CRITICAL;
    if (enter == FEDL_PRESSURE_OK && hold == FEDL_PRESSURE_OK)
        return;
    if (r->cgroup_version != 0 && r->cgroup_limit > 0 &&
        (uint64_t)(r->cgroup_limit - (r->cgroup_working_set < r->cgroup_limit
                                          ? r->cgroup_working_set
                                          : r->cgroup_limit)) == available)
        snprintf(where, sizeof where, "cgroup v%d %.120s: working set %s of %s", r->cgroup_version,
                 r->cgroup_path, fedl_budget_format_bytes(r->cgroup_working_set, a, sizeof a),
                 fedl_budget_format_bytes(r->cgroup_limit, b, sizeof b));
    else
        snprintf(where, sizeof where, "MemAvailable %s of %s",
                 fedl_budget_format_bytes(r->mem_available, a, sizeof a),
                 fedl_budget_format_bytes(r->mem_total, b, sizeof b));
    if (held_percent != percent)
        note(v, enter, hold, "memory available %.1f%%, %.1f%% once %s are taken back (%s)", percent,
             held_percent, fedl_budget_format_bytes(s->reserve_bytes, a, sizeof a), where);
    else
        note(v, enter, hold, "memory available %.1f%% (%s)", percent, where);
}

static void judge(const fedl_policy_state *s, const fedl_readings *r, verdict *v)
{
    const fedl_policy *p = &s->policy;
    double f = p->psi_leave_factor;
    judge_memory(s, r, v);
    if (r->psi_memory.valid) {
        rising(v, r->psi_memory.full_avg10, 0.0, 0.0, p->psi_mem_full_pct, p->psi_mem_full_pct * f,
               "memory PSI full avg10", "%");
        rising(v, r->psi_memory.some_avg10, p->psi_mem_some_pct, p->psi_mem_some_pct * f, 0.0, 0.0,
               "memory PSI some avg10", "%");
    }
    if (r->psi_cpu.valid)
        rising(v, r->psi_cpu.some_avg10, p->psi_cpu_some_pct, p->psi_cpu_some_pct * f, 0.0, 0.0,
               "cpu PSI some avg10", "%");
    if (r->has_load && r->cpus > 0)
        rising(v, r->load1 / (double)r->cpus, p->load_per_cpu, p->load_per_cpu * f, 0.0, 0.0,
               "load per cpu", "");
    if (r->thermal_zones > 0)
        rising(v, r->temp_max_c, p->temp_constrained_c, p->temp_constrained_c - p->temp_leave_c,
               p->temp_critical_c, p->temp_critical_c - p->temp_leave_c, r->temp_zone, " C");
    if (r->has_throttle && p->throttle_constrained && (r->throttled & 0xfu) != 0)
        note(v, FEDL_PRESSURE_CONSTRAINED, FEDL_PRESSURE_CONSTRAINED,
             "firmware reports throttling (get_throttled 0x%x)", (unsigned)r->throttled);
}

static void update_disk(fedl_policy_state *s, const fedl_readings *r, fedl_policy_decision *d)
{
    char a[32], b[32];
    int low = s->disk_low;
    if (!r->has_disk || s->policy.disk_floor_bytes == 0)
        low = 0;
    else if (r->disk_free < s->policy.disk_floor_bytes)
        low = 1;
    else if (r->disk_free >= s->policy.disk_leave_bytes)
        low = 0;
    if (low != s->disk_low)
        d->changed = 1;
    s->disk_low = low;
    d->disk_low = low;
    if (low && s->state == FEDL_PRESSURE_OK) /* the disk is the news */
        snprintf(d->reason, sizeof d->reason, "disk free %s below the floor %s (%s)",
                 fedl_budget_format_bytes(r->disk_free, a, sizeof a),
                 fedl_budget_format_bytes(s->policy.disk_floor_bytes, b, sizeof b),
                 r->disk_free < s->policy.disk_floor_bytes ? "entered"
                                                           : "not yet back above the leave level");
}

/* The state is held only by its dwell or cooldown: say how long is left. */
static void describe_wait(const fedl_policy_state *s, const verdict *v, uint64_t now, char *out,
                          size_t size)
{
    int critical = s->state == FEDL_PRESSURE_CRITICAL;
    double wait_s = (double)(critical ? s->policy.cooldown_ms : s->policy.dwell_ms) / 1e3;
    double waited_s = s->below_since_ns != 0 ? (double)(now - s->below_since_ns) / 1e9 : 0.0;
    const char *lower = s->below_since_ns != 0 ? v->why[s->below] : "";
    snprintf(out, size, "%s: %.1f s more (%s)", critical ? "cooldown" : "dwell",
             wait_s > waited_s ? wait_s - waited_s : 0.0,
             lower[0] != '\0' ? lower : "readings clear");
}

void fedl_policy_update(fedl_policy_state *s, const fedl_readings *r, fedl_policy_decision *d)
{
    verdict v;
    fedl_pressure target;
    uint64_t now = r->time_ns;
    memset(&v, 0, sizeof v);
    memset(d, 0, sizeof *d);
    d->previous = s->state;
    judge(s, r, &v);
    s->updates++;
    /* Up at once; down only to what the leave levels allow. */
    target = v.hold < s->state ? v.hold : s->state;
    if (v.enter > target)
        target = v.enter;
    if (target > s->state) {
        s->state = target;
        s->entered_ns = now;
        s->below_since_ns = 0;
    } else if (target < s->state) {
        uint64_t wait =
            (s->state == FEDL_PRESSURE_CRITICAL ? s->policy.cooldown_ms : s->policy.dwell_ms) *
            MS_NS;
        if (s->below_since_ns == 0) {
            s->below_since_ns = now;
            s->below = target;
        } else if (target > s->below) {
            s->below = target; /* the highest level seen while waiting */
        }
        if (now - s->below_since_ns >= wait && now - s->entered_ns >= s->policy.dwell_ms * MS_NS) {
            s->state = s->below;
            s->entered_ns = now;
            s->below_since_ns = 0;
        }
    } else {
        s->below_since_ns = 0;
    }
    d->state = s->state;
    d->changed = d->state != d->previous;
    if (s->state != FEDL_PRESSURE_OK && v.why[s->state][0] != '\0')
        memcpy(d->reason, v.why[s->state], sizeof d->reason);
    else if (s->state != FEDL_PRESSURE_OK)
        describe_wait(s, &v, now, d->reason, sizeof d->reason);
    else {
        double percent;
        uint64_t available = fedl_readings_mem_available(r, &percent);
        char a[32];
        snprintf(d->reason, sizeof d->reason, "clear: memory available %s (%.1f%%)",
                 fedl_budget_format_bytes(available, a, sizeof a), percent);
    }
    update_disk(s, r, d);
}
