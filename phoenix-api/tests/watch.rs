//! The WebSocket watch in process: a watcher that connects while the experiment is pending
//! sees its whole run without a gap or a duplicate, and a deleted experiment closes the
//! socket.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use phoenix_api::auth::TokenKind;
use phoenix_api::{AppState, Principal, ServerConfig};
use phoenix_core::experiment::{EventKind, ExperimentEvent, ExperimentId, ExperimentSpec};
use phoenix_core::phase::Phase;
use phoenix_store::Role;
use tokio::task::JoinHandle;
use tungstenite::Message;

/// The whole router on a loopback port, stopped when dropped.
struct Server {
    state: AppState,
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start() -> Result<Self> {
        let config = ServerConfig::default()
            .with_database_url("memory://")
            .with_admin_password("watch tests admin password");
        let state = AppState::open(&config).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let router = phoenix_api::app(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the test server runs until it is aborted");
        });
        Ok(Self {
            state,
            address,
            task,
        })
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
            .state
            .service()
            .create_experiment(&self.admin(), spec)
            .await?;
        Ok(created.id)
    }

    /// A blocking WebSocket client on the watch route of `id`.
    fn connect(&self, id: &ExperimentId) -> Result<Socket> {
        let token = self
            .state
            .service()
            .tokens()
            .issue(&self.admin(), TokenKind::Access)?;
        let url = format!(
            "ws://{}/api/v1/experiments/{id}/watch?access_token={token}",
            self.address
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_opened_while_pending_sees_the_whole_run() -> Result<()> {
    let server = Server::start().await?;
    let id = server.create("ws-handover").await?;
    let mut socket = server.connect(&id)?;
    let (mut socket, first) = tokio::task::spawn_blocking(move || {
        let first = read(&mut socket, 1);
        (socket, first)
    })
    .await?;
    let first = first?;
    assert!(
        matches!(first.events[0].kind, EventKind::Created),
        "{first:?}"
    );

    server
        .state
        .service()
        .start_experiment(&server.admin(), &id)
        .await?;
    let rest = tokio::task::spawn_blocking(move || read(&mut socket, usize::MAX)).await??;
    assert_eq!(
        rest.close,
        Some(1000),
        "a normal close once the run is over"
    );

    let mut watched = first.events;
    watched.extend(rest.events);
    let logged = server
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
    let server = Server::start().await?;
    let id = server.create("ws-deleted").await?;
    let mut socket = server.connect(&id)?;
    let (mut socket, first) = tokio::task::spawn_blocking(move || {
        let first = read(&mut socket, 1);
        (socket, first)
    })
    .await?;
    assert_eq!(first?.events.len(), 1);
    server
        .state
        .service()
        .delete_experiment(&server.admin(), &id)
        .await?;
    let rest = tokio::task::spawn_blocking(move || read(&mut socket, usize::MAX)).await??;
    assert!(rest.events.is_empty(), "{rest:?}");
    assert!(rest.close.is_some(), "the server closes the socket");
    Ok(())
}
