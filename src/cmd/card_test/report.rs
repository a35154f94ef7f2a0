//! Results of `keysim card-test`: one line per case, JSON and JUnit XML with the same content.

use std::io::Write;

use serde_json::{Value, json};
use sim_reader::RawExchange;

use super::cases::Case;
use super::net::hx;

/// What `keysim card-test --help` adds about output and exit status.
pub const HELP: &str = "\
Each case prints one line: ID, clause, verdict (pass, FAIL, n/a, skipped), title; a failure adds
what a correct card answers, what came back and the APDUs the case exchanged.

JSON (--json): {\"reader\", \"atr\", \"ok\", \"summary\": {\"total\", \"pass\", \"fail\", \"not_applicable\",
\"skipped\"}, \"clauses\": {CLAUSE: {\"total\", \"pass\", \"fail\", \"not_applicable\", \"skipped\"}},
\"cases\": [{\"id\", \"clause\", \"title\", \"verdict\" (pass|fail|not_applicable|skipped), \"message\",
\"expected\", \"got\", \"apdus\": [{\"command\", \"response\"}] (failures only), \"seconds\"}]}.
--list --json prints [{\"id\", \"clause\", \"title\", \"destructive\"}].
JUnit (--junit FILE): one <testsuite> per clause, one <testcase> per case; a failure is <failure>,
not applicable and skipped cases are <skipped>.

Exit status: 0 no case failed, 1 a case failed, 2 the suite could not run (reader, profile, or a
card that lists no USIM or refuses the profile's PIN1).";

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Fail,
    NotApplicable,
    Skipped,
}

impl Verdict {
    fn key(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NotApplicable => "not_applicable",
            Verdict::Skipped => "skipped",
        }
    }
    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable => "n/a",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One case's result.
pub(crate) struct CaseResult {
    pub id: &'static str,
    pub clause: &'static str,
    pub title: &'static str,
    pub verdict: Verdict,
    pub message: Option<String>,
    pub expected: Option<String>,
    pub got: Option<String>,
    pub apdus: Vec<RawExchange>,
    pub seconds: f64,
}

/// A whole run.
pub(crate) struct Run {
    pub reader: String,
    pub atr: Vec<u8>,
    pub defect: Option<String>,
    pub results: Vec<CaseResult>,
}

fn counts<'a>(results: impl Iterator<Item = &'a CaseResult>) -> Value {
    let mut c = [0usize; 4];
    let mut total = 0;
    for r in results {
        total += 1;
        c[r.verdict as usize] += 1;
    }
    json!({"total": total, "pass": c[0], "fail": c[1], "not_applicable": c[2], "skipped": c[3]})
}

impl Run {
    pub(crate) fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.verdict == Verdict::Fail).count()
    }

    fn clauses(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for r in &self.results {
            if !out.contains(&r.clause) {
                out.push(r.clause);
            }
        }
        out
    }

    pub(crate) fn to_json(&self) -> Value {
        let clauses: serde_json::Map<String, Value> = self
            .clauses()
            .into_iter()
            .map(|c| (c.to_owned(), counts(self.results.iter().filter(|r| r.clause == c))))
            .collect();
        let mut v = json!({
            "reader": self.reader,
            "atr": hx(&self.atr),
            "ok": self.failed() == 0,
            "summary": counts(self.results.iter()),
            "clauses": clauses,
            "cases": self.results.iter().map(|r| {
                let mut case = json!({
                    "id": r.id, "clause": r.clause, "title": r.title, "verdict": r.verdict.key(),
                    "message": r.message, "expected": r.expected, "got": r.got,
                    "seconds": (r.seconds * 1e4).round() / 1e4,
                });
                if r.verdict == Verdict::Fail {
                    case["apdus"] = r.apdus.iter().map(|x| json!({"command": hx(&x.command), "response": hx(&x.response)})).collect();
                }
                case
            }).collect::<Vec<_>>(),
        });
        if let Some(d) = &self.defect {
            v["defect"] = json!(d);
        }
        v
    }

    pub(crate) fn to_junit(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total_time: f64 = self.results.iter().map(|r| r.seconds).sum();
        x += &format!(
            "<testsuites name=\"keysim card-test\" tests=\"{}\" failures=\"{}\" time=\"{:.4}\">\n",
            self.results.len(),
            self.failed(),
            total_time
        );
        for clause in self.clauses() {
            let cases: Vec<_> = self.results.iter().filter(|r| r.clause == clause).collect();
            let failures = cases.iter().filter(|r| r.verdict == Verdict::Fail).count();
            let skipped = cases
                .iter()
                .filter(|r| matches!(r.verdict, Verdict::NotApplicable | Verdict::Skipped))
                .count();
            x += &format!(
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.4}\">\n",
                esc(clause),
                cases.len(),
                failures,
                skipped,
                cases.iter().map(|r| r.seconds).sum::<f64>()
            );
            for r in cases {
                x += &format!(
                    "    <testcase classname=\"{}\" name=\"{} {}\" time=\"{:.4}\"",
                    esc(clause),
                    esc(r.id),
                    esc(r.title),
                    r.seconds
                );
                match r.verdict {
                    Verdict::Pass => x += "/>\n",
                    Verdict::Fail => {
                        x += &format!(
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                            esc(r.message.as_deref().unwrap_or("")),
                            esc(&failure_text(r))
                        );
                    }
                    Verdict::NotApplicable | Verdict::Skipped => {
                        let word =
                            if r.verdict == Verdict::NotApplicable { "not applicable" } else { "skipped" };
                        x += &format!(
                            ">\n      <skipped message=\"{}: {}\"/>\n    </testcase>\n",
                            word,
                            esc(r.message.as_deref().unwrap_or(""))
                        );
                    }
                }
            }
            x += "  </testsuite>\n";
        }
        x += "</testsuites>\n";
        x
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn failure_text(r: &CaseResult) -> String {
    let mut t = String::new();
    if let Some(m) = &r.message {
        t += &format!("{m}\n");
    }
    if let Some(e) = &r.expected {
        t += &format!("expected: {e}\n");
    }
    if let Some(g) = &r.got {
        t += &format!("got:      {g}\n");
    }
    for x in &r.apdus {
        t += &format!("  > {}\n  < {}\n", hx(&x.command), hx(&x.response));
    }
    t
}

/// One line per case (and the failure's detail under it).
pub(crate) fn print_line(r: &CaseResult) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{:<26} {:<14} {:<7} {}", r.id, r.clause, r.verdict.word(), r.title);
    match r.verdict {
        Verdict::Fail => {
            for line in failure_text(r).lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        Verdict::NotApplicable | Verdict::Skipped => {
            if let Some(m) = &r.message {
                let _ = writeln!(out, "    {m}");
            }
        }
        Verdict::Pass => {}
    }
}

pub(crate) fn print_summary(run: &Run) {
    let s = counts(run.results.iter());
    println!(
        "{} cases on {}: {} pass, {} fail, {} not applicable, {} skipped{}",
        s["total"],
        run.reader,
        s["pass"],
        s["fail"],
        s["not_applicable"],
        s["skipped"],
        run.defect.as_deref().map(|d| format!(" (planted defect {d})")).unwrap_or_default()
    );
}

pub(crate) fn print_list(cases: &[&Case], json_out: bool) -> anyhow::Result<()> {
    if json_out {
        let v: Vec<_> = cases
            .iter()
            .map(|c| json!({"id": c.id, "clause": c.clause, "title": c.title, "destructive": c.destructive}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for c in cases {
        println!(
            "{:<26} {:<14} {}{}",
            c.id,
            c.clause,
            c.title,
            if c.destructive { " [destructive]" } else { "" }
        );
    }
    println!("{} cases", cases.len());
    Ok(())
}
