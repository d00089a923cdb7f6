//! The WebSocket watch in process: a watcher that connects while the experiment is pending
//! sees its whole run without a gap or a duplicate, and a deleted experiment closes the
//! socket.

use std::time::Duration;

use anyhow::{Context, Result};
use phoenix_api::Principal;
use phoenix_core::experiment::{EventKind, ExperimentEvent, ExperimentId, ExperimentSpec};
use phoenix_core::phase::Phase;
use phoenix_store::Role;
use tungstenite::Message;

#[allow(dead_code)]
mod support;

use support::InProcess;

/// The whole router on a loopback port, stopped when dropped.
struct Server {
    inner: InProcess,
}

impl Server {
    async fn start() -> Result<Self> {
        let inner = InProcess::start("watch tests admin password").await?;
        Ok(Self { inner })
    }

    fn admin(&self) -> Principal {
        Principal::new("admin", Role::Admin)
    }

    async fn create(&self, name: &str) -> Result<ExperimentId> {
        let mut spec: serde_json::Value =
            serde_json::from_str(include_str!("grpc-fixtures/short-spec.json"))?;
        spec["name"] = name.into();
        let spec: ExperimentSpec = serde_json::from_value(spec)?;
        let created = self
            .inner
            .state
            .service()
            .create_experiment(&self.admin(), spec)
            .await?;
        Ok(created.id)
    }

    /// A blocking WebSocket client on the watch route of `id`.
    fn connect(&self, id: &ExperimentId) -> Result<Socket> {
        let token = self.inner.token("admin", Role::Admin)?;
        let url = format!(
            "ws://{}/api/v1/experiments/{id}/watch?access_token={token}",
            self.inner.address
        );
        let (socket, _) = tungstenite::connect(url)?;
        if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = socket.get_ref() {
            tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
        }
        Ok(socket)
    }
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// What a socket received: its events, and the close code if the server closed it.
#[derive(Debug, Default)]
struct Received {
    events: Vec<ExperimentEvent>,
    close: Option<u16>,
}

/// Reads frames until the server closes the socket, or `limit` events arrived.
fn read(socket: &mut Socket, limit: usize) -> Result<Received> {
    let mut received = Received::default();
    while received.events.len() < limit {
        match socket.read().context("reading a frame")? {
            Message::Text(text) => received.events.push(serde_json::from_str(&text)?),
            Message::Close(frame) => {
                received.close = Some(frame.map_or(0, |f| f.code.into()));
                break;
            }
            _ => {}
        }
    }
    Ok(received)
}

/// Reads the rest of `socket` off the runtime: every event up to the server's close.
async fn read_rest(mut socket: Socket) -> Result<Received> {
    tokio::task::spawn_blocking(move || read(&mut socket, usize::MAX)).await?
}

/// A server with the pending experiment `name`, a socket watching it, and the first event
/// that socket received.
async fn watching(name: &str) -> Result<(Server, ExperimentId, Socket, Received)> {
    let server = Server::start().await?;
    let id = server.create(name).await?;
    let mut socket = server.connect(&id)?;
    let (socket, first) = tokio::task::spawn_blocking(move || {
        let first = read(&mut socket, 1);
        (socket, first)
    })
    .await?;
    Ok((server, id, socket, first?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_opened_while_pending_sees_the_whole_run() -> Result<()> {
    let (server, id, socket, first) = watching("ws-handover").await?;
    assert!(
        matches!(first.events[0].kind, EventKind::Created),
        "{first:?}"
    );

    server
        .inner
        .state
        .service()
        .start_experiment(&server.admin(), &id)
        .await?;
    let rest = read_rest(socket).await?;
    assert_eq!(
        rest.close,
        Some(1000),
        "a normal close once the run is over"
    );

    let mut watched = first.events;
    watched.extend(rest.events);
    let logged = server
        .inner
        .state
        .service()
        .experiment_events(&server.admin(), &id)
        .await?;
    assert_eq!(watched, logged, "every event once, in order");
    assert!(matches!(
        watched.last().map(|e| &e.kind),
        Some(EventKind::Transition {
            to: Phase::Completed,
            ..
        })
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_watched_experiment_closes_the_socket() -> Result<()> {
    let (server, id, socket, first) = watching("ws-deleted").await?;
    assert_eq!(first.events.len(), 1);
    server
        .inner
        .state
        .service()
        .delete_experiment(&server.admin(), &id)
        .await?;
    let rest = read_rest(socket).await?;
    assert!(rest.events.is_empty(), "{rest:?}");
    assert!(rest.close.is_some(), "the server closes the socket");
    Ok(())
}
