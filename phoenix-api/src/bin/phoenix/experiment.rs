//! `phoenix experiment ...`: experiments on the server.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use phoenix_core::analysis::{ExperimentResults, VariantSummary};
use phoenix_core::experiment::{
    EventKind, Experiment, ExperimentEvent, ExperimentId, PipelineRef, Target, WorkloadSource,
};
use phoenix_core::phase::Phase;
use serde_json::Value;

use crate::args::{ExperimentArgs, ExperimentCommand};
use crate::client::{ApiClient, Socket, TransportError};
use crate::output::{self, Details, Format, Table, number, percent};

/// How long the event stream may stay silent before the experiment is looked up directly.
const QUIET_POLL: Duration = Duration::from_secs(5);

/// How often in a row `watch` tries to reopen a stream that closed while the run goes on
/// (one try a [`RECONNECT_PAUSE`]: half a minute for a server to come back).
const MAX_RECONNECTS: u32 = 30;

/// The pause before reopening the stream.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Runs one experiment command against the server.
pub fn run(args: &ExperimentArgs, format: Format) -> Result<()> {
    let client = ApiClient::new(&args.server.server)?;
    match &args.command {
        ExperimentCommand::Create { file } => {
            let spec = read_spec(file)?;
            let created: Value = client.post("/api/v1/experiments", Some(&spec))?;
            show_one(&created, format)
        }
        ExperimentCommand::List {
            phase,
            owner,
            limit,
            after,
        } => {
            let items = list(&client, *phase, owner.as_deref(), *limit, after.clone())?;
            format.print(&items, |items| list_table(items))
        }
        ExperimentCommand::Get { id } => {
            let experiment: Value = client.get(&format!("/api/v1/experiments/{id}"))?;
            match format.machine(&experiment)? {
                Some(text) => output::print(&text),
                None => output::print(&details(&typed(&experiment)?)),
            }
        }
        ExperimentCommand::Update { id, file } => {
            let spec = read_spec(file)?;
            let updated: Value = client.put(&format!("/api/v1/experiments/{id}"), &spec)?;
            show_one(&updated, format)
        }
        ExperimentCommand::Delete { id } => {
            client.delete(&format!("/api/v1/experiments/{id}"))?;
            let report = serde_json::json!({ "id": id.as_str(), "deleted": true });
            format.print(&report, |_| format!("deleted {id}\n"))
        }
        ExperimentCommand::Start { id } => action(&client, id, "start", format),
        ExperimentCommand::Stop { id } => action(&client, id, "stop", format),
        ExperimentCommand::Promote { id } => action(&client, id, "promote", format),
        ExperimentCommand::Rollback { id } => action(&client, id, "rollback", format),
        ExperimentCommand::Events { id } => {
            let events: Vec<Value> = client.get(&format!("/api/v1/experiments/{id}/events"))?;
            format.print(&events, |events| {
                if events.is_empty() {
                    return "no events\n".to_owned();
                }
                events.iter().map(event_text).collect()
            })
        }
        ExperimentCommand::Results { id } => {
            let results: Value = client.get(&format!("/api/v1/experiments/{id}/results"))?;
            match format.machine(&results)? {
                Some(text) => output::print(&text),
                None => {
                    let typed: ExperimentResults = serde_json::from_value(results)
                        .context("the server answered unexpected results")?;
                    output::print(&results_view(&typed))
                }
            }
        }
        ExperimentCommand::Watch { id, timeout } => watch(&client, id, *timeout, format),
    }
}

/// Reads a spec document (YAML or JSON; `-` is standard input) into JSON for the API.
fn read_spec(file: &Path) -> Result<Value> {
    let (text, name) = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the spec from standard input")?;
        (text, "standard input".to_owned())
    } else {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        (text, file.display().to_string())
    };
    let value: Value =
        serde_yaml::from_str(&text).with_context(|| format!("{name} is not valid YAML or JSON"))?;
    if !value.is_object() {
        bail!(
            "{name}: expected an experiment spec (a mapping with name, baseline, candidate, ...)"
        );
    }
    Ok(value)
}

/// `start`, `stop`, `promote`, `rollback`.
fn action(client: &ApiClient, id: &ExperimentId, verb: &str, format: Format) -> Result<()> {
    let experiment: Value = client.post(&format!("/api/v1/experiments/{id}/{verb}"), None)?;
    show_one(&experiment, format)
}

/// One experiment as a one-row table, or as JSON/YAML.
fn show_one(experiment: &Value, format: Format) -> Result<()> {
    let items = vec![experiment.clone()];
    match format.machine(experiment)? {
        Some(text) => output::print(&text),
        None => output::print(&list_table(&items)),
    }
}

/// Lists experiments: one page when `limit` is set (saying on standard error how to get the
/// next), else every page. A server that hands out a paging token twice would loop forever:
/// the listing stops there, with a note.
fn list(
    client: &ApiClient,
    phase: Option<Phase>,
    owner: Option<&str>,
    limit: Option<u32>,
    mut after: Option<String>,
) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut tokens: HashSet<String> = after.iter().cloned().collect();
    loop {
        let path = list_path(phase, owner, limit, after.as_deref());
        let page: Value = client.get(&path)?;
        items.extend(list_items(&page)?);
        let next = page.get("next").and_then(Value::as_str).map(str::to_owned);
        match (next, limit) {
            (Some(token), Some(_)) => {
                let _ = writeln!(std::io::stderr(), "more experiments: add --after {token}");
                return Ok(items);
            }
            (Some(token), None) => {
                if !tokens.insert(token.clone()) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "the server repeated the paging token {token}; the list stops here"
                    );
                    return Ok(items);
                }
                after = Some(token);
            }
            (None, _) => return Ok(items),
        }
    }
}

/// The path of one list page, its filters as an encoded query.
fn list_path(
    phase: Option<Phase>,
    owner: Option<&str>,
    limit: Option<u32>,
    after: Option<&str>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(phase) = phase {
        query.append_pair("phase", phase.as_str());
    }
    if let Some(owner) = owner {
        query.append_pair("owner", owner);
    }
    if let Some(limit) = limit {
        query.append_pair("limit", &limit.to_string());
    }
    if let Some(after) = after {
        query.append_pair("after", after);
    }
    let query = query.finish();
    if query.is_empty() {
        "/api/v1/experiments".to_owned()
    } else {
        format!("/api/v1/experiments?{query}")
    }
}

/// The experiments of a list page: `{"items": [...], "next": ...}`, or a bare array.
fn list_items(answer: &Value) -> Result<Vec<Value>> {
    let list = match answer {
        Value::Array(list) => Some(list),
        Value::Object(map) => map.get("items").and_then(Value::as_array),
        _ => None,
    };
    list.cloned()
        .context("the server's experiment list is not a list")
}

fn typed(value: &Value) -> Result<Experiment> {
    serde_json::from_value(value.clone()).context("the server answered an unexpected experiment")
}

fn list_table(items: &[Value]) -> String {
    if items.is_empty() {
        return "no experiments\n".to_owned();
    }
    let mut table = Table::new(["ID", "NAME", "PHASE", "CANDIDATE", "OWNER", "CREATED"]);
    for item in items {
        match typed(item) {
            Ok(x) => table.row([
                x.id.to_string(),
                x.spec.name.clone(),
                x.status.phase.to_string(),
                pipeline(&x.spec.candidate),
                x.spec.owner.clone(),
                x.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            ]),
            Err(_) => table.row([
                item.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned(),
                "(unreadable)".to_owned(),
            ]),
        };
    }
    table.render()
}

fn pipeline(p: &PipelineRef) -> String {
    match p {
        PipelineRef::Template { name, .. } => name.clone(),
        PipelineRef::Inline { .. } => "(inline config)".to_owned(),
    }
}

fn workload(x: &Experiment) -> String {
    let w = &x.spec.workload;
    let source = match &w.source {
        WorkloadSource::Profile { preset, processes } => match processes {
            Some(n) => format!("profile {preset} ({n} processes)"),
            None => format!("profile {preset}"),
        },
        WorkloadSource::Custom { .. } => "custom profile".to_owned(),
        WorkloadSource::Recording { path } => format!("recording {path}"),
    };
    format!("{source}, seed {}", w.seed)
}

fn target(t: &Target) -> String {
    match t {
        Target::Local => "local".to_owned(),
        Target::Kubernetes { namespace, .. } => format!("kubernetes namespace {namespace}"),
    }
}

/// The full view of one experiment.
fn details(x: &Experiment) -> String {
    let spec = &x.spec;
    let mut d = Details::new();
    d.add("id", x.id.as_str())
        .add("name", spec.name.as_str())
        .add("phase", x.status.phase.as_str());
    if let Some(failure) = &x.status.failure {
        d.add("failure", failure.as_str());
    }
    if !spec.description.is_empty() {
        d.add("description", spec.description.as_str());
    }
    if !spec.owner.is_empty() {
        d.add("owner", spec.owner.as_str());
    }
    d.add("baseline", pipeline(&spec.baseline))
        .add("candidate", pipeline(&spec.candidate))
        .add("target", target(&spec.target))
        .add("workload", workload(x))
        .add(
            "duration",
            format!(
                "{} (warm-up {}, scrape every {})",
                humantime::format_duration(spec.duration),
                humantime::format_duration(spec.warm_up),
                humantime::format_duration(spec.scrape_interval)
            ),
        )
        .add("windows measured", x.status.windows.len().to_string())
        .add("created", x.created_at.to_rfc3339())
        .add("updated", x.updated_at.to_rfc3339());
    let mut text = d.render();
    if let Some(results) = &x.status.results {
        text.push('\n');
        text.push_str(&results_view(results));
    }
    text
}

/// The results: both variants side by side, the recommendation and the findings.
fn results_view(r: &ExperimentResults) -> String {
    let currency = &r.cost_model.currency;
    let mut table = Table::new(["", "BASELINE", "CANDIDATE", "REDUCTION"]);
    let row =
        |table: &mut Table, label: &str, f: &dyn Fn(&VariantSummary) -> String, red: String| {
            table.row([label.to_owned(), f(&r.baseline), f(&r.candidate), red]);
        };
    let c = &r.comparison;
    row(
        &mut table,
        "distinct series",
        &|v| number(v.distinct_series as f64, 0),
        percent(c.cardinality_reduction),
    );
    row(
        &mut table,
        "data points / min",
        &|v| number(v.data_points_per_minute, 0),
        percent(c.data_point_reduction),
    );
    row(
        &mut table,
        "bytes / min",
        &|v| number(v.bytes_per_minute, 0),
        percent(c.byte_reduction),
    );
    row(
        &mut table,
        "series churn / h",
        &|v| number(v.series_churn_per_hour, 1),
        String::new(),
    );
    row(
        &mut table,
        "critical coverage",
        &|v| percent(v.critical_coverage),
        format!("loss {}", percent(c.critical_process_loss)),
    );
    row(
        &mut table,
        &format!("monthly cost ({currency})"),
        &|v| number(v.monthly_cost.total, 2),
        percent(c.cost_reduction),
    );
    let mut text = format!(
        "results over {} ({} windows):\n",
        humantime::format_duration(r.measured),
        r.windows
    );
    text.push_str(&table.render());
    text.push_str(&format!(
        "monthly saving: {} {currency}\n",
        number(c.monthly_saving, 2)
    ));
    text.push_str(&format!("recommendation: {}\n", r.recommendation.as_str()));
    for reason in r.recommendation.reasons() {
        text.push_str(&format!("  - {reason}\n"));
    }
    if !r.findings.is_empty() {
        text.push_str("findings:\n");
        for finding in &r.findings {
            text.push_str(&format!("  - {finding}\n"));
        }
    }
    text
}

/// Whether a run that ended in `phase` counts as a success.
fn succeeded(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Completed | Phase::Promoted | Phase::RolledBack
    )
}

/// The run is over: no more events will change whether it succeeded.
fn run_over(phase: Phase) -> bool {
    !phase.is_active()
}

/// How following one stream ended.
enum Followed {
    /// The server closed the stream, or a quiet stream's run turned out to be over.
    Ended,
    /// The connection broke or a quiet check could not reach the server: worth reopening.
    Broke(anyhow::Error),
}

/// Follows the experiment's events until the server closes the stream after the run ended,
/// reopening the stream when it breaks or closes while the run goes on. Events are printed
/// once each, in order, whatever the reconnections: the server replays the whole log on each
/// connection, and whatever the stream missed at the end is read from `/events`.
fn watch(
    client: &ApiClient,
    id: &ExperimentId,
    timeout: Option<Duration>,
    format: Format,
) -> Result<()> {
    let deadline = timeout.map(|t| (Instant::now() + t, t));
    let path = format!("/api/v1/experiments/{id}");
    // Refuses a missing or unreadable experiment before the stream is opened.
    typed(&client.get::<Value>(&path)?)?;
    let mut printed = 0_usize;
    let mut reconnects = 0_u32;
    let mut phase: Option<Phase> = None;
    loop {
        check_deadline(id, deadline, phase)?;
        let before = printed;
        let broke = match client.websocket(&format!("{path}/watch")) {
            Ok(mut socket) => {
                let result = follow(
                    client,
                    &path,
                    &mut socket,
                    format,
                    &mut printed,
                    id,
                    deadline,
                );
                let _ = socket.close(None);
                let _ = socket.flush();
                match result? {
                    Followed::Ended => None,
                    Followed::Broke(e) => Some(e),
                }
            }
            Err(e) if TransportError::is_transport(&e) => Some(e),
            // The server refused, or there is no session to send: retrying will not help.
            Err(e) => return Err(e),
        };
        if printed > before {
            reconnects = 0;
        }
        let broke = match client.get::<Value>(&path) {
            Ok(value) => {
                let last = typed(&value)?;
                phase = Some(last.status.phase);
                if run_over(last.status.phase) {
                    match print_missed(client, &path, format, &mut printed) {
                        Ok(()) => return outcome(id, &last, format),
                        Err(e) if TransportError::is_transport(&e) => Some(e),
                        Err(e) => return Err(e),
                    }
                } else {
                    broke
                }
            }
            // The server is away (restarting, say): try again.
            Err(e) if TransportError::is_transport(&e) => Some(e),
            Err(e) => return Err(e),
        };
        reconnects += 1;
        if reconnects > MAX_RECONNECTS {
            let state = phase.map_or_else(String::new, |p| format!(" while it is still {p}"));
            let why = broke.map(|e| format!(": {e:#}")).unwrap_or_default();
            bail!("the event stream of {id} closed{state}{why}");
        }
        if reconnects == 1 {
            let _ = writeln!(
                std::io::stderr(),
                "the event stream closed while the run goes on; reconnecting"
            );
        }
        std::thread::sleep(RECONNECT_PAUSE);
    }
}

/// Fails once `--timeout` has passed.
fn check_deadline(
    id: &ExperimentId,
    deadline: Option<(Instant, Duration)>,
    phase: Option<Phase>,
) -> Result<()> {
    if let Some((at, timeout)) = deadline
        && Instant::now() >= at
    {
        let state = phase.map_or_else(String::new, |p| format!(" (still {p})"));
        bail!(
            "experiment {id} has not ended after {}{state}",
            humantime::format_duration(timeout)
        );
    }
    Ok(())
}

/// Prints the events of the log past the first `printed`, read from `/events`.
fn print_missed(client: &ApiClient, path: &str, format: Format, printed: &mut usize) -> Result<()> {
    let events: Vec<Value> = client.get(&format!("{path}/events"))?;
    for event in events.iter().skip(*printed) {
        print_event(event, format)?;
        *printed += 1;
    }
    Ok(())
}

/// Reports how a run that is over ended: `Ok` when it succeeded.
fn outcome(id: &ExperimentId, last: &Experiment, format: Format) -> Result<()> {
    let phase = last.status.phase;
    if format == Format::Table {
        output::print(&format!("{id} ended: {phase}\n"))?;
    }
    if succeeded(phase) {
        return Ok(());
    }
    match &last.status.failure {
        Some(reason) => bail!("experiment {id} {phase}: {reason}"),
        None => bail!("experiment {id} {phase}"),
    }
}

/// Prints the events of `socket` past the first `printed` (the server replays the whole log
/// on every connection) until the server closes it. A stream quiet for [`QUIET_POLL`] is
/// checked against the experiment: a run that is over ends the stream too. An `Err` is
/// final; [`Followed::Broke`] may be reopened.
fn follow(
    client: &ApiClient,
    path: &str,
    socket: &mut Socket,
    format: Format,
    printed: &mut usize,
    id: &ExperimentId,
    deadline: Option<(Instant, Duration)>,
) -> Result<Followed> {
    let mut seen = 0_usize;
    loop {
        check_deadline(id, deadline, None)?;
        let wait = deadline.map_or(QUIET_POLL, |(at, _)| {
            at.saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(10), QUIET_POLL)
        });
        socket
            .get_ref()
            .set_read_timeout(Some(wait))
            .context("cannot set a read timeout on the event stream")?;
        match socket.read() {
            Ok(tungstenite::Message::Text(text)) => {
                let event: Value = serde_json::from_str(text.as_str())
                    .context("the event stream sent invalid JSON")?;
                seen += 1;
                if seen <= *printed {
                    continue;
                }
                print_event(&event, format)?;
                *printed = seen;
            }
            Ok(tungstenite::Message::Close(_))
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(Followed::Ended);
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // A quiet stream: the run may have ended before the socket opened, or the
                // server may be gone without closing it.
                match client.get::<Value>(path) {
                    Ok(value) if run_over(typed(&value)?.status.phase) => {
                        return Ok(Followed::Ended);
                    }
                    Ok(_) => {}
                    Err(e) if TransportError::is_transport(&e) => {
                        return Ok(Followed::Broke(e.context("the quiet check failed")));
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => {
                return Ok(Followed::Broke(
                    anyhow::Error::new(e).context("the event stream broke"),
                ));
            }
        }
    }
}

/// One event: a line for people, one JSON document per line, or a YAML document.
fn print_event(event: &Value, format: Format) -> Result<()> {
    let text = match format {
        Format::Json => serde_json::to_string(event).context("cannot encode an event")? + "\n",
        Format::Yaml => {
            format!(
                "---\n{}",
                serde_yaml::to_string(event).context("cannot encode an event")?
            )
        }
        Format::Table => event_text(event),
    };
    output::print(&text)
}

/// One event as a line for people; an event this build cannot read as its JSON.
fn event_text(event: &Value) -> String {
    match serde_json::from_value::<ExperimentEvent>(event.clone()) {
        Ok(e) => event_line(&e),
        Err(_) => format!("{event}\n"),
    }
}

fn event_line(e: &ExperimentEvent) -> String {
    let what = match &e.kind {
        EventKind::Created => "created".to_owned(),
        EventKind::Updated => "updated".to_owned(),
        EventKind::Transition { from, to, event } if from == to => format!("{event} ({to})"),
        EventKind::Transition { from, to, .. } => format!("{from} -> {to}"),
    };
    format!(
        "{}  {:<18}  {:<26}  {}\n",
        e.at.format("%Y-%m-%dT%H:%M:%SZ"),
        e.actor,
        what,
        e.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use crate::args::ServerUrl;
    use crate::credentials::{Credentials, Session, unix_now};

    /// A minimal HTTP server on a free loopback port: `answer` maps a request's method and
    /// path to a status and a JSON body, or `None` to drop the connection unanswered. The
    /// requests are recorded.
    struct FakeServer {
        url: ServerUrl,
        requests: Arc<Mutex<Vec<String>>>,
        _config: tempfile::TempDir,
    }

    impl FakeServer {
        fn start(answer: fn(&str, &str) -> Option<(u16, String)>) -> (Self, ApiClient) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url =
                ServerUrl::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&requests);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { break };
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut head = String::new();
                    reader.read_line(&mut head).unwrap();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let mut parts = head.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let path = parts.next().unwrap_or_default().to_owned();
                    seen.lock().unwrap().push(format!("{method} {path}"));
                    if let Some((status, body)) = answer(&method, &path) {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                }
            });
            let config = tempfile::tempdir().unwrap();
            let credentials = Credentials::at(config.path().join("credentials.json"));
            credentials
                .put(
                    url.as_str(),
                    Session {
                        username: "admin".to_owned(),
                        access_token: "a".to_owned(),
                        refresh_token: "r".to_owned(),
                        access_expires_at: unix_now() + 3600,
                    },
                )
                .unwrap();
            let client = ApiClient::with_credentials(&url, credentials);
            let server = Self {
                url,
                requests,
                _config: config,
            };
            (server, client)
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    const ID: &str = "exp-abcd1234";

    /// The experiment `ID` in `phase`.
    fn experiment(phase: Phase) -> String {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/cli-fixtures/aggregated-short.yaml"
        );
        let spec = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut x = Experiment::with_id(ID.parse().unwrap(), spec);
        x.status.phase = phase;
        serde_json::to_string(&x).unwrap()
    }

    #[test]
    fn paging_stops_when_a_token_repeats() {
        let (server, client) = FakeServer::start(|_, _| {
            Some((
                200,
                r#"{"items":[{"id":"exp-aaaaaaaa"}],"next":"t1"}"#.to_owned(),
            ))
        });
        let items = list(&client, None, None, None, None).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            server.requests(),
            [
                "GET /api/v1/experiments",
                "GET /api/v1/experiments?after=t1"
            ]
        );
        assert!(server.url.as_str().starts_with("http://127.0.0.1:"));
    }

    #[test]
    fn a_stream_that_breaks_after_the_run_ended_is_completed_from_the_log() {
        let (server, client) = FakeServer::start(|_, path| match path {
            // The stream cannot be opened: the connection closes at once.
            p if p.ends_with("/watch") => None,
            p if p.ends_with("/events") => Some((200, "[]".to_owned())),
            _ => Some((200, experiment(Phase::Completed))),
        });
        let id: ExperimentId = ID.parse().unwrap();
        watch(&client, &id, Some(Duration::from_secs(60)), Format::Json).unwrap();
        let requests = server.requests();
        assert!(
            requests.contains(&format!("GET /api/v1/experiments/{ID}/events")),
            "{requests:?}"
        );
    }

    #[test]
    fn a_refused_refresh_is_not_retried() {
        let (server, client) = FakeServer::start(|_, path| match path {
            p if p.ends_with("/watch") || p.ends_with("/refresh") => {
                Some((401, r#"{"title":"Unauthorized","status":401}"#.to_owned()))
            }
            _ => Some((200, experiment(Phase::Running))),
        });
        let id: ExperimentId = ID.parse().unwrap();
        let e = watch(&client, &id, None, Format::Json).unwrap_err();
        assert!(e.to_string().contains("has expired"), "{e}");
        assert_eq!(
            server.requests(),
            [
                format!("GET /api/v1/experiments/{ID}"),
                format!("GET /api/v1/experiments/{ID}/watch"),
                "POST /api/v1/auth/refresh".to_owned(),
            ]
        );
    }

    #[test]
    fn list_answers_may_be_wrapped() {
        let a = serde_json::json!([{"id": "exp-1"}]);
        assert_eq!(list_items(&a).unwrap().len(), 1);
        let b = serde_json::json!({"items": [{"id": "exp-1"}, {"id": "exp-2"}], "next": null});
        assert_eq!(list_items(&b).unwrap().len(), 2);
        assert!(list_items(&serde_json::json!({"x": 1})).is_err());
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(list_path(None, None, None, None), "/api/v1/experiments");
        let path = list_path(
            Some(Phase::Running),
            Some("a b&c=d/é"),
            Some(5),
            Some("t&k"),
        );
        let query = path
            .strip_prefix("/api/v1/experiments?")
            .expect("a query follows the path");
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let expected = [
            ("phase", "running"),
            ("owner", "a b&c=d/é"),
            ("limit", "5"),
            ("after", "t&k"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(pairs, expected);
        assert!(!query.contains('é') && !query.contains(' '), "{query}");
    }

    #[test]
    fn deadlines_name_the_experiment() {
        let id: ExperimentId = "exp-abcd1234".parse().unwrap();
        assert!(check_deadline(&id, None, None).is_ok());
        let later = Some((
            Instant::now() + Duration::from_secs(60),
            Duration::from_secs(60),
        ));
        assert!(check_deadline(&id, later, None).is_ok());
        let past = Some((Instant::now(), Duration::from_secs(1)));
        let e = check_deadline(&id, past, Some(Phase::Running))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "experiment exp-abcd1234 has not ended after 1s (still running)"
        );
    }

    #[test]
    fn empty_lists_say_so() {
        assert_eq!(list_table(&[]), "no experiments\n");
        let odd = list_table(&[serde_json::json!({"id": "exp-abcd1234"})]);
        assert!(
            odd.contains("exp-abcd1234") && odd.contains("(unreadable)"),
            "{odd}"
        );
    }

    #[test]
    fn outcomes() {
        assert!(succeeded(Phase::Completed) && run_over(Phase::Completed));
        assert!(!succeeded(Phase::Failed) && run_over(Phase::Failed));
        assert!(!run_over(Phase::Running));
    }
}
