//! The rule performance report as one self-contained HTML page: inline CSS, inline SVG charts
//! drawn here, no script, no font, no URL to fetch, so it opens the same from a mail
//! attachment, a ticket or a file share.
//!
//! The page: headline figures; live against shadow; a stacked bar per UTC day (approvals,
//! declines); a bar per rule with labelled fraud (caught, missed); the per-rule tables (live,
//! shadow), the per-rule-and-day tables, what was not counted and the definitions. Every text
//! from the journal (rule labels, webhooks) is escaped ([`escape`]). Each table row carries
//! `data-webhook`, `data-rule` (and `data-day`) and each figure cell `data-figure`, so the page
//! can be checked by what it shows.
//!
//! Chart geometry uses integer arithmetic on counts: bar lengths are `count × length / max`,
//! rounded down; no figure shown is computed in floating point.

use std::fmt::Write;

use super::report::{Amounts, Line, Report, Side};

/// Text for HTML content and attribute values: `& < > " '` escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const APPROVED: &str = "#2e7d32";
const DECLINED: &str = "#c62828";
const CAUGHT: &str = "#1565c0";
const MISSED: &str = "#ef6c00";

const STYLE: &str = r#"
:root { --ink: #1d2433; --muted: #5b6475; --line: #dde2ea; --panel: #f6f8fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #fff; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0; font-size: 26px; letter-spacing: -0.01em; }
header p { margin: 4px 0 0; color: var(--muted); }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 8px; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin-top: 20px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; }
.card .v { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.card .s { color: var(--muted); font-size: 12px; }
.caught .v { color: #1565c0; } .missed .v { color: #b34700; } .fp .v { color: #8a1c1c; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table { font-size: 13px; }
th, td { padding: 5px 7px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--panel); font-weight: 600; font-size: 12px; color: var(--muted); position: sticky; top: 0;
  white-space: normal; vertical-align: bottom; }
td.t, th.t { text-align: left; }
td.rule { white-space: normal; overflow-wrap: anywhere; min-width: 7em; max-width: 22em; }
tbody tr:hover { background: #fafbfd; }
tr.total td { font-weight: 650; border-top: 2px solid var(--line); }
.wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; }
.legend { display: flex; gap: 16px; color: var(--muted); font-size: 12px; margin: 4px 0 8px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #5b6475; }
svg text.v { fill: #1d2433; font-weight: 600; }
svg tspan.w { fill: #8a93a3; font-size: 11px; }
details { margin-top: 12px; } summary { cursor: pointer; color: var(--muted); }
dl.defs { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.defs dt { font-weight: 600; } dl.defs dd { margin: 0; color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.none { color: var(--muted); font-style: italic; }
@media print { .wrap { overflow: visible; } th { position: static; } }
"#;

/// The figure columns of the tables, in order: the `data-figure` key, the heading in the
/// per-rule tables, and the name in the live-against-shadow table (`None`: not shown there).
/// [`figures`] gives a row's values in the same order.
const COLUMNS: [(&str, &str, Option<&str>); 10] = [
    ("decisions", "decisions", Some("decisions")),
    ("approvals", "approvals", Some("approvals")),
    ("declines", "declines", Some("declines")),
    (
        "to_ledger",
        "to ledger",
        Some("to the ledger (answer unknown)"),
    ),
    (
        "approved_amount",
        "approved amount",
        Some("approved amount"),
    ),
    ("declined_amount", "declined amount", None),
    ("fraud_caught", "fraud caught", Some("fraud caught")),
    ("fraud_missed", "fraud missed", Some("fraud missed")),
    ("missed_amount", "missed amount", Some("missed amount")),
    (
        "false_positive_share",
        "false positives",
        Some("false positives"),
    ),
];

/// A row's figures as shown (escaped), in the order of [`COLUMNS`].
fn figures(l: &Line) -> [String; 10] {
    let f = &l.figures;
    [
        f.decisions.to_string(),
        f.approvals.to_string(),
        f.declines.to_string(),
        f.to_ledger.to_string(),
        f.approved_amount.to_string(),
        f.declined_amount.to_string(),
        f.fraud_caught.to_string(),
        f.fraud_missed.to_string(),
        f.missed_amount.to_string(),
        l.false_positive_share.to_string(),
    ]
    .map(|v| escape(&v))
}

/// The report as an HTML document.
pub fn render(r: &Report) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let title = format!("Rule performance, {} to {}", r.from, r.to);
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <header><h1>Rule performance</h1><p>Decisions from <b>{}</b> to <b>{}</b> (UTC), \
         with the fraud labels known when the report was made.</p></header>",
        escape(&title),
        escape(&r.from),
        escape(&r.to),
    );
    cards(&mut out, r);
    live_against_shadow(&mut out, r);
    out.push_str("<h2>Approvals and declines per day</h2>\n");
    legend(&mut out, [(APPROVED, "approvals"), (DECLINED, "declines")]);
    day_chart(&mut out, &r.live);
    out.push_str("<h2>Labelled fraud per rule: caught and missed</h2>\n");
    legend(
        &mut out,
        [(CAUGHT, "caught (declined)"), (MISSED, "missed (approved)")],
    );
    fraud_chart(&mut out, &r.live, "live");
    if r.shadow.total.is_some() {
        out.push_str("<h3>Shadow policy</h3>\n");
        fraud_chart(&mut out, &r.shadow, "shadow");
    }
    for (name, side) in [("live", &r.live), ("shadow", &r.shadow)] {
        let _ = writeln!(out, "<h2>Per rule: {name} policy</h2>");
        if name == "shadow" && side.total.is_none() {
            none(
                &mut out,
                "No decision in this range was journaled with a shadow policy.",
            );
        } else {
            lines_table(&mut out, &side.by_rule, side.total.as_ref(), false, name);
        }
    }
    out.push_str("<h2>Per rule and day</h2>\n");
    for (name, side) in [("live", &r.live), ("shadow", &r.shadow)] {
        if side.total.is_none() {
            continue;
        }
        let _ = writeln!(
            out,
            "<details open><summary>{name} policy, {} rows</summary>",
            side.by_rule_and_day.len()
        );
        lines_table(&mut out, &side.by_rule_and_day, None, true, name);
        out.push_str("</details>\n");
    }
    skipped(&mut out, r);
    definitions(&mut out);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// A paragraph saying there is nothing to show.
fn none(out: &mut String, text: &str) {
    let _ = writeln!(out, "<p class=\"none\">{text}</p>");
}

/// A chart's legend: a colour swatch and a name each.
fn legend<const N: usize>(out: &mut String, keys: [(&str, &str); N]) {
    out.push_str("<div class=\"legend\">");
    for (colour, name) in keys {
        let _ = write!(
            out,
            "<span><i style=\"background:{colour}\"></i>{name}</span>"
        );
    }
    out.push_str("</div>\n");
}

fn cards(out: &mut String, r: &Report) {
    let Some(t) = &r.live.total else {
        none(out, "No decision in this range.");
        return;
    };
    let f = &t.figures;
    let fp = t.false_positive_share;
    let amount = |a: &Amounts| escape(&a.to_string());
    let cards: [(&str, &str, &str, String, String); 5] = [
        (
            "",
            "card-decisions",
            "Decisions",
            f.decisions.to_string(),
            format!("{} approved · {} declined", f.approvals, f.declines),
        ),
        (
            "",
            "card-approved",
            "Approved amount",
            amount(&f.approved_amount),
            format!("declined {}", amount(&f.declined_amount)),
        ),
        (
            "caught",
            "card-caught",
            "Fraud caught",
            f.fraud_caught.to_string(),
            "labelled fraud, declined".into(),
        ),
        (
            "missed",
            "card-missed",
            "Fraud missed",
            f.fraud_missed.to_string(),
            format!("approved: {}", amount(&f.missed_amount)),
        ),
        (
            "fp",
            "card-false-positives",
            "False positives",
            fp.percent().map_or("–".into(), |p| format!("{p}%")),
            format!("{} of {} declines labelled not fraud", fp.part, fp.of),
        ),
    ];
    out.push_str("<section class=\"cards\">\n");
    for (class, id, key, value, sub) in cards {
        let _ = writeln!(
            out,
            "<div class=\"card {class}\" id=\"{id}\"><div class=\"k\">{key}</div>\
             <div class=\"v\">{value}</div><div class=\"s\">{sub}</div></div>"
        );
    }
    out.push_str("</section>\n");
}

fn live_against_shadow(out: &mut String, r: &Report) {
    let (Some(live), Some(shadow)) = (&r.live.total, &r.shadow.total) else {
        return;
    };
    out.push_str(
        "<h2>Live against shadow</h2>\n<p>Over the decisions journaled with a shadow policy, \
         the shadow's figures beside the live ones. The live column counts every decision in \
         the range.</p>\n<div class=\"wrap\"><table id=\"live-shadow\"><thead><tr>\
         <th class=\"t\">figure</th><th>live</th><th>shadow</th></tr></thead><tbody>\n",
    );
    let rows = COLUMNS
        .iter()
        .zip(figures(live).into_iter().zip(figures(shadow)));
    for ((key, _, name), (lv, sv)) in rows {
        let Some(name) = name else { continue };
        let _ = writeln!(
            out,
            "<tr data-figure-row=\"{key}\"><td class=\"t\">{name}</td><td data-side=\"live\">{lv}</td>\
             <td data-side=\"shadow\">{sv}</td></tr>"
        );
    }
    out.push_str("</tbody></table></div>\n");
}

/// A chart's opening tag and title (an image, for assistive technology).
fn svg_open(out: &mut String, id: &str, width: u64, height: u64, title: &str) {
    let _ = writeln!(
        out,
        "<svg id=\"{id}\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"{title}\">\n<title>{title}</title>"
    );
}

/// One bar of a chart, with its figure as a tooltip.
fn rect(out: &mut String, (x, y): (u64, u64), (width, height): (u64, u64), fill: &str, tip: &str) {
    let _ = write!(
        out,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{height}\" fill=\"{fill}\">\
         <title>{tip}</title></rect>"
    );
}

/// At most this many characters of a label in a chart (the tables have it whole).
const CHART_LABEL_CHARS: usize = 34;

fn short(label: &str) -> String {
    if label.chars().count() <= CHART_LABEL_CHARS {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(CHART_LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// `count × length / max`, rounded down (0 when `max` is 0).
fn scaled(count: u64, length: u64, max: u64) -> u64 {
    count.saturating_mul(length).checked_div(max).unwrap_or(0)
}

/// A round gridline step (1, 2 or 5 times a power of ten) giving at most 5 steps up to `max`.
fn tick_step(max: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = unit.saturating_mul(m);
            if max.div_ceil(step) <= 5 {
                return step;
            }
        }
        unit = unit.saturating_mul(10);
    }
}

/// A webhook's short name for chart labels.
fn webhook_short(webhook: &str) -> &str {
    match webhook {
        "card-tokenization" => "tokenization",
        "banking-antifraud" => "banking",
        "full-balance-antifraud" => "full balance",
        "zero-balance" => "zero balance",
        other => other,
    }
}

/// One stacked bar per day: approvals below, declines above, the total on top.
fn day_chart(out: &mut String, side: &Side) {
    let days = &side.by_day;
    if days.is_empty() {
        none(out, "No decision in this range.");
        return;
    }
    const WIDTH: u64 = 1100;
    const HEIGHT: u64 = 300;
    const LEFT: u64 = 56;
    const TOP: u64 = 24;
    const BOTTOM: u64 = 44;
    let plot_w = WIDTH - LEFT - 16;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = days.len() as u64;
    let max = days.iter().map(|d| d.figures.decisions).max().unwrap_or(0);
    let slot = plot_w / n.max(1);
    let bar = (slot * 6 / 10).clamp(2, 64);
    // At most about 16 day labels under the axis.
    let every = n.div_ceil(16).max(1);
    svg_open(
        out,
        "chart-days",
        WIDTH,
        HEIGHT,
        "Approvals and declines per day",
    );
    let base = TOP + plot_h;
    // Gridlines at round values (a step of 1, 2 or 5 times a power of ten); the axis reaches
    // the first gridline at or above the tallest bar.
    let step = tick_step(max);
    let top = max.div_ceil(step).max(1) * step;
    for tick in 0..=top / step {
        let value = tick * step;
        let y = base - scaled(value, plot_h, top);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e4e8ef\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{value}</text>",
            LEFT + plot_w,
            LEFT - 8,
            y + 4
        );
    }
    for (i, d) in days.iter().enumerate() {
        let i = i as u64;
        let f = &d.figures;
        let x = LEFT + i * slot + (slot - bar) / 2;
        let ha = scaled(f.approvals, plot_h, top);
        let hd = scaled(f.declines, plot_h, top);
        let day = escape(d.day.as_deref().unwrap_or(""));
        let _ = write!(out, "<g data-day=\"{day}\">");
        let approvals = format!("{day}: {} approvals", f.approvals);
        rect(out, (x, base - ha), (bar, ha), APPROVED, &approvals);
        let declines = format!("{day}: {} declines", f.declines);
        rect(out, (x, base - ha - hd), (bar, hd), DECLINED, &declines);
        let _ = write!(
            out,
            "<text class=\"v\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + bar / 2,
            base - ha - hd - 6,
            f.decisions
        );
        if i.is_multiple_of(every) {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{day}</text>",
                x + bar / 2,
                base + 18
            );
        }
        out.push_str("</g>\n");
    }
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#9aa3b2\"/>\n</svg>",
        LEFT + plot_w
    );
}

/// One horizontal bar per rule with labelled fraud: caught, then missed.
fn fraud_chart(out: &mut String, side: &Side, name: &str) {
    let fraud = |l: &Line| l.figures.fraud_caught + l.figures.fraud_missed;
    // Most labelled fraud first; ties in table order.
    let mut rows: Vec<&Line> = side.by_rule.iter().filter(|l| fraud(l) > 0).collect();
    rows.sort_by_key(|l| std::cmp::Reverse(fraud(l)));
    if rows.is_empty() {
        none(out, "No decision labelled fraud in this range.");
        return;
    }
    const WIDTH: u64 = 1100;
    const LEFT: u64 = 300;
    const RIGHT: u64 = 170;
    const ROW: u64 = 30;
    const TOP: u64 = 8;
    let plot_w = WIDTH - LEFT - RIGHT;
    let height = TOP * 2 + ROW * rows.len() as u64;
    let max = rows.iter().map(|l| fraud(l)).max().unwrap_or(0);
    let title = format!("Labelled fraud per rule, {name}");
    svg_open(out, &format!("chart-fraud-{name}"), WIDTH, height, &title);
    for (i, l) in rows.iter().enumerate() {
        let f = &l.figures;
        let y = TOP + i as u64 * ROW;
        let wc = scaled(f.fraud_caught, plot_w, max);
        let wm = scaled(f.fraud_missed, plot_w, max);
        let rule = l.rule.as_deref().unwrap_or("");
        let webhook = l.webhook.as_deref().unwrap_or("");
        let _ = write!(
            out,
            "<g data-webhook=\"{}\" data-rule=\"{}\">\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{} · {}</title>{}<tspan class=\"w\"> · {}</tspan></text>",
            escape(webhook),
            escape(rule),
            LEFT - 10,
            y + ROW / 2 + 4,
            escape(webhook),
            escape(rule),
            escape(&short(rule)),
            escape(webhook_short(webhook)),
        );
        let caught = format!("{} caught", f.fraud_caught);
        rect(out, (LEFT, y + 5), (wc, ROW - 10), CAUGHT, &caught);
        let missed = format!("{} missed", f.fraud_missed);
        rect(out, (LEFT + wc, y + 5), (wm, ROW - 10), MISSED, &missed);
        let _ = writeln!(
            out,
            "<text class=\"v\" x=\"{}\" y=\"{}\">{caught} · {missed}</text></g>",
            LEFT + wc + wm + 8,
            y + ROW / 2 + 4,
        );
    }
    out.push_str("</svg>\n");
}

/// A table of `lines` (and their `total`), with their day first when `with_day`; the
/// `to_ledger` column on the shadow's only.
fn lines_table(out: &mut String, lines: &[Line], total: Option<&Line>, with_day: bool, side: &str) {
    let shown = |key: &str| key != "to_ledger" || side == "shadow";
    let _ = write!(
        out,
        "<div class=\"wrap\"><table class=\"rules\" data-side=\"{side}\"><thead><tr>"
    );
    if with_day {
        out.push_str("<th class=\"t\">day</th>");
    }
    out.push_str("<th class=\"t\">webhook</th><th class=\"t\">rule</th>");
    for (key, head, _) in COLUMNS {
        if shown(key) {
            let _ = write!(out, "<th>{head}</th>");
        }
    }
    out.push_str("</tr></thead><tbody>\n");
    let row = |out: &mut String, l: &Line, class: &str| {
        let webhook = escape(l.webhook.as_deref().unwrap_or(""));
        let rule = escape(l.rule.as_deref().unwrap_or(""));
        let day = escape(l.day.as_deref().unwrap_or(""));
        let _ = write!(
            out,
            "<tr class=\"{class}\" data-webhook=\"{webhook}\" data-rule=\"{rule}\" data-day=\"{day}\">"
        );
        if with_day {
            let _ = write!(out, "<td class=\"t\">{day}</td>");
        }
        let _ = write!(
            out,
            "<td class=\"t\">{webhook}</td><td class=\"t rule\">{rule}</td>"
        );
        for ((key, _, _), value) in COLUMNS.iter().zip(figures(l)) {
            if shown(key) {
                let _ = write!(out, "<td data-figure=\"{key}\">{value}</td>");
            }
        }
        out.push_str("</tr>\n");
    };
    for l in lines {
        row(out, l, "");
    }
    if let Some(t) = total {
        let mut t = t.clone();
        t.webhook = Some("all".into());
        t.rule = Some("all rules".into());
        row(out, &t, "total");
    }
    out.push_str("</tbody></table></div>\n");
}

fn skipped(out: &mut String, r: &Report) {
    if r.skipped.is_empty() {
        return;
    }
    out.push_str("<h2>Not counted</h2>\n<p>Journal items in the scan that are not decisions the report counts:</p>\n<ul id=\"skipped\">\n");
    for (reason, n) in &r.skipped {
        let _ = writeln!(out, "<li><code>{}</code>: {n}</li>", escape(reason));
    }
    out.push_str("</ul>\n");
}

fn definitions(out: &mut String) {
    out.push_str(
        "<h2>Definitions</h2>\n<dl class=\"defs\">\n\
         <dt>decisions</dt><dd>journaled webhook decisions in the range, under their rule label \
         (a rule, <code>default</code>, a control, a ledger outcome, <code>fallback</code>); \
         Zero balance counts authorization requests only</dd>\n\
         <dt>approvals, declines</dt><dd>by the answer given, read as the webhook's response</dd>\n\
         <dt>to ledger</dt><dd>shadow only: Zero balance requests the shadow's rules let through \
         where the live rules declined; the ledger's answer is unknown</dd>\n\
         <dt>amounts</dt><dd>exact sums per currency (ISO 4217 numeric code)</dd>\n\
         <dt>fraud caught</dt><dd>declines labelled <code>fraud</code> or <code>chargeback</code></dd>\n\
         <dt>fraud missed</dt><dd>approvals labelled <code>fraud</code> or <code>chargeback</code>; \
         missed amount = their amounts</dd>\n\
         <dt>false positives</dt><dd>declines labelled <code>not_fraud</code> ÷ declines, in percent \
         rounded half away from zero to two places, with the exact ratio</dd>\n\
         <dt>label precedence</dt><dd><code>chargeback</code> &gt; <code>fraud</code> &gt; \
         <code>not_fraud</code> when a decision has several labels</dd>\n\
         </dl>\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{How, Input};
    use crate::outcomes::report::{Range, build};
    use crate::outcomes::{Kind, Labels};

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(
            escape(r#"<b a="1">&'"#),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;"
        );
        let mut e = crate::outcomes::testing::entry(
            "banking-antifraud#1",
            "<script>alert(1)</script>\"'&",
            How::Policy,
            r#"{"decision":"reject"}"#,
            1_793_491_200_000,
        );
        e.inputs = vec![("amount".into(), Input::Number(rust_decimal::Decimal::TEN))].into();
        let labels: Labels = [("banking-antifraud#1", Kind::Fraud)].into_iter().collect();
        let r = build(
            Range {
                from_ms: 1_793_491_200_000,
                to_ms: 1_793_577_599_999,
            },
            [e],
            &labels,
        );
        let page = render(&r);
        assert!(!page.contains("<script"), "a label became markup");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        // Self-contained: nothing to fetch.
        for banned in [
            "http://", "https://", "<link", "@import", "url(", "<script", "src=",
        ] {
            assert!(!page.contains(banned), "{banned} in the page");
        }
        assert!(page.contains("id=\"chart-days\"") && page.contains("id=\"chart-fraud-live\""));
    }

    #[test]
    fn bars_scale_by_integers() {
        assert_eq!(scaled(3, 100, 4), 75);
        assert_eq!(scaled(1, 100, 0), 0);
        let ticks: Vec<u64> = [0, 1, 5, 6, 12, 40, 1234].map(tick_step).to_vec();
        assert_eq!(ticks, [1, 1, 1, 2, 5, 10, 500]);
        assert_eq!(
            short("a".repeat(40).as_str()).chars().count(),
            CHART_LABEL_CHARS
        );
    }
}
