"""Results of scripts/bench: raw values to a TSV as they come, and per test a table of
medians with spread (min..max) and ferry's ratio to the better of nginx and HAProxy."""
import statistics

BACKEND_CONNS = "backend conns opened / 1k req"
# test -> (title, [(metric, label, better)]); better: "high", "low" or None (no ratio:
# counts, or a figure where "better" is not meaningful).
SPECS = {
    "http": ("http: GET / (a few bytes), HTTP/1.1 keep-alive, wrk 50 conns", [
        ("rps", "req/s", "high"), ("p50_ms", "p50 latency ms", "low"),
        ("p99_ms", "p99 latency ms", "low"), ("cpu_s_per_100k", "proxy CPU s / 100k req", "low"),
        ("backend_conns_per_1k", BACKEND_CONNS, None), ("errors", "errors", None)]),
    "https": ("https: GET / over TLS 1.3 (ECDSA P-256), keep-alive, wrk 50 conns", [
        ("rps", "req/s", "high"), ("p50_ms", "p50 latency ms", "low"),
        ("p99_ms", "p99 latency ms", "low"), ("cpu_s_per_100k", "proxy CPU s / 100k req", "low"),
        ("backend_conns_per_1k", BACKEND_CONNS, None), ("errors", "errors", None)]),
    "hs": ("hs: full TLS 1.3 handshake per request, ECDSA P-256, ab -c 50", [
        ("hs_s", "handshakes/s", "high"), ("cpu_ms_per_1k", "proxy CPU ms / 1k hs", "low"),
        ("errors", "failed", None)]),
    "hs_rsa": ("hs_rsa: full TLS 1.3 handshake per request, RSA-2048, ab -c 50", [
        ("hs_s", "handshakes/s", "high"), ("cpu_ms_per_1k", "proxy CPU ms / 1k hs", "low"),
        ("errors", "failed", None)]),
    "resume": ("resume: TLS 1.3 resumption (ticket PSK), 16 x openssl s_time -reuse", [
        ("resumed_s", "resumptions/s", "high"), ("reuse_pct", "% connections resumed", None),
        ("cpu_ms_per_1k", "proxy CPU ms / 1k conns", "low")]),
    "big": ("big: GET /f/1m.bin (1 MiB), keep-alive, wrk 50 conns", [
        ("mib_s", "MiB/s", "high"), ("cpu_s_per_gib", "proxy CPU s / GiB", "low"),
        ("p99_ms", "p99 latency ms", "low"), ("backend_conns_per_1k", BACKEND_CONNS, None),
        ("errors", "errors", None)]),
    "mk64": ("mk64: GET /f/64k.bin (64 KiB), keep-alive, wrk 50 conns", [
        ("mib_s", "MiB/s", "high"), ("rps", "req/s", "high"),
        ("cpu_s_per_gib", "proxy CPU s / GiB", "low"), ("backend_conns_per_1k", BACKEND_CONNS, None),
        ("errors", "errors", None)]),
    "tcp": ("tcp: 1 MiB responses through the L4 listener, wrk 50 conns", [
        ("mib_s", "MiB/s", "high"), ("cpu_s_per_gib", "proxy CPU s / GiB", "low"),
        ("errors", "errors", None)]),
    "h2": ("h2: GET / over HTTP/2 (TLS 1.3, ALPN h2), h2load 50 conns x 10 streams", [
        ("rps", "req/s", "high"), ("p50_ms", "p50 latency ms", "low"),
        ("p99_ms", "p99 latency ms", "low"), ("cpu_s_per_100k", "proxy CPU s / 100k req", "low"),
        ("backend_conns_per_1k", BACKEND_CONNS, None), ("errors", "failed", None)]),
    "h2big": ("h2big: GET /f/1m.bin (1 MiB) over HTTP/2, h2load 50 conns x 1 stream", [
        ("mib_s", "MiB/s", "high"), ("cpu_s_per_gib", "proxy CPU s / GiB", "low"),
        ("p99_ms", "p99 latency ms", "low"), ("backend_conns_per_1k", BACKEND_CONNS, None),
        ("errors", "failed", None)]),
    "udp": ("udp: DNS A queries, dnsperf -c 8 -q 256, two dnsmasq behind, responses 1", [
        ("qps", "queries/s", "high"),
        ("cpu_s_per_100k_dgram", "proxy CPU s / 100k datagrams", "low"),
        ("avg_latency_ms", "avg latency ms", "low"), ("lost", "queries lost", None)]),
    "mem": ("mem: RSS fresh, and per idle client connection (5000 plain, 1000 TLS)", [
        ("rss_fresh_mib", "serving process RSS MiB", "low"),
        ("private_all_mib", "all processes private MiB", "low"),
        ("bytes_per_conn", "bytes / idle conn", "low"),
        ("bytes_per_tls_conn", "bytes / idle TLS conn", "low")]),
    "reload": ("reload: 10 config reloads under keep-alive + new-connection load", [
        ("failed", "failed requests", None), ("failed_idle_ka", "  of which idle keep-alive", None),
        ("refused", "refused connections", None), ("ok_requests", "ok requests", None),
        ("reloads_seen", "reloads seen to take effect", None)]),
}
BUSY = ("busy_client", "busy_proxy", "busy_backends", "busy_other")
BUSY_PIN = ("busy_proxy_core", "busy_other_core")


def fmt(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if v == int(v) or a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


class Results:
    def __init__(self, tsv_path, meta):
        self.values = {}   # (test, proxy, metric) -> [value per round]
        self.reasons = {}  # (test, proxy) -> [n/a reason per failed round]
        self.commands = {}  # test -> ordered unique commands
        self.tsv = open(tsv_path, "w")
        for k, v in meta:
            self.tsv.write("# %s\t%s\n" % (k, v))
        self.tsv.write("round\ttest\tproxy\tmetric\tvalue\tnote\n")

    def add(self, rnd, test, proxy, metrics, reason=None):
        if reason is not None:
            self.reasons.setdefault((test, proxy), []).append(reason)
            self.tsv.write("%d\t%s\t%s\t\t\t%s\n" % (rnd, test, proxy, reason.replace("\t", " ")
                                                     .replace("\n", " ")))
        for metric, val in sorted(metrics.items()):
            if val is None:
                continue
            self.values.setdefault((test, proxy, metric), []).append(float(val))
            self.tsv.write("%d\t%s\t%s\t%s\t%.6g\t\n" % (rnd, test, proxy, metric, val))
        self.tsv.flush()

    def add_commands(self, test, lines):
        seen = self.commands.setdefault(test, [])
        for line in lines:
            if line not in seen:
                seen.append(line)

    def close(self):
        self.tsv.close()

    def median(self, test, proxy, metric):
        vals = self.values.get((test, proxy, metric))
        return statistics.median(vals) if vals else None

    def cell(self, test, proxy, metric):
        vals = self.values.get((test, proxy, metric))
        if not vals:
            return "n/a"
        med = fmt(statistics.median(vals))
        if len(vals) == 1 or min(vals) == max(vals):
            return med
        return "%s (%s..%s)" % (med, fmt(min(vals)), fmt(max(vals)))

    def ratio(self, test, proxies, metric, better):
        if better is None or "ferry" not in proxies:
            return ""
        mine = self.median(test, "ferry", metric)
        peers = [self.median(test, p, metric) for p in proxies if p != "ferry"]
        peers = [p for p in peers if p is not None]
        if mine is None or not peers:
            return "n/a"
        best = max(peers) if better == "high" else min(peers)
        if best == 0:
            return "n/a"
        return "%.2fx" % (mine / best)

    def table(self, test, proxies, pinned):
        title, metrics = SPECS[test]
        rows = [["", *proxies] + (["ferry/best"] if "ferry" in proxies else [])]
        for metric, label, better in metrics:
            arrow = {"high": " (+)", "low": " (-)"}.get(better, "")
            row = [label + arrow] + [self.cell(test, p, metric) for p in proxies]
            if "ferry" in proxies:
                row.append(self.ratio(test, proxies, metric, better))
            rows.append(row)
        if any(self.values.get((test, p, "busy_proxy")) for p in proxies):
            row = ["busy % client/proxy/backends/other"]
            for p in proxies:
                vals = [self.median(test, p, k) for k in BUSY]
                row.append("n/a" if vals[1] is None else "/".join(
                    "%.0f" % v if v is not None else "?" for v in vals))
            rows.append(row + ([""] if "ferry" in proxies else []))
            row = ["machine busy % (all CPUs)"]
            for p in proxies:
                v = self.median(test, p, "busy_system")
                row.append("n/a" if v is None else "%.0f" % v)
            rows.append(row + ([""] if "ferry" in proxies else []))
            if pinned:
                row = ["busy % proxy core/other core"]
                for p in proxies:
                    vals = [self.median(test, p, k) for k in BUSY_PIN]
                    row.append("n/a" if vals[0] is None else "/".join("%.0f" % v for v in vals))
                rows.append(row + ([""] if "ferry" in proxies else []))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        out = ["== %s" % title]
        for r in rows:
            out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        for p in proxies:
            for reason in dict.fromkeys(self.reasons.get((test, p), [])):
                out.append("   %s n/a: %s" % (p, reason))
        return "\n".join(out)
