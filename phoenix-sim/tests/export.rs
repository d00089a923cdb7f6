//! The network outputs against receivers started here on 127.0.0.1 ephemeral ports.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use phoenix_core::experiment::ProfilePreset;
use phoenix_core::otlp::wire::ExportMetricsServiceRequest;
use phoenix_core::telemetry::Snapshot;
use phoenix_sim::export::{
    EXPORT_PATH, ExportMetricsServiceResponse, ExportOptions, OtlpGrpc, OtlpHttp, PrometheusServer,
};
use phoenix_sim::output::{Pace, run};
use phoenix_sim::{Profile, SimConfig, Simulator};
use tonic::codegen::{BoxFuture, Service, http};

type Received = Arc<Mutex<Vec<Snapshot>>>;

fn simulator() -> Simulator {
    let profile = Profile::preset(ProfilePreset::Chaos)
        .with_processes(25)
        .unwrap();
    Simulator::new(
        &profile,
        SimConfig {
            seed: 3,
            ..SimConfig::default()
        },
    )
    .unwrap()
}

/// Runs `serve` on a runtime of its own thread; returns once it is listening.
fn background<F: Future<Output = ()> + Send + 'static>(serve: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(serve);
    });
}

/// A minimal OTLP gRPC metrics receiver, written as tonic's code generator would.
#[derive(Clone)]
struct MetricsService(Received);

impl tonic::server::NamedService for MetricsService {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
}

struct Export(Received);

impl tonic::server::UnaryService<ExportMetricsServiceRequest> for Export {
    type Response = ExportMetricsServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ExportMetricsServiceRequest>) -> Self::Future {
        let received = Arc::clone(&self.0);
        Box::pin(async move {
            let snapshot = Snapshot::try_from(request.into_inner())
                .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
            received.lock().unwrap().push(snapshot);
            Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
        })
    }
}

impl<B> Service<http::Request<B>> for MetricsService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let received = Arc::clone(&self.0);
        if request.uri().path() == EXPORT_PATH {
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Export(received), request).await)
            })
        } else {
            Box::pin(async {
                let mut response = http::Response::new(tonic::body::Body::empty());
                response
                    .headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static("12"));
                Ok(response)
            })
        }
    }
}

/// Starts the gRPC receiver; returns its address.
fn grpc_receiver(received: &Received) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let service = MetricsService(Arc::clone(received));
    background(async move {
        let incoming =
            tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        tx.send(incoming.local_addr().unwrap()).unwrap();
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    rx.recv().unwrap()
}

#[test]
fn otlp_grpc_splits_a_large_snapshot_into_several_requests() {
    let received = Received::default();
    let addr = grpc_receiver(&received);
    let mut sim = simulator();
    let snapshot = sim.next_snapshot().clone();
    let options = ExportOptions {
        max_request_bytes: 8 * 1024,
        ..ExportOptions::default()
    };
    let mut sink = OtlpGrpc::connect_with(&format!("http://{addr}"), options).unwrap();
    sink.export(&snapshot).unwrap();
    let got = received.lock().unwrap();
    assert!(got.len() > 1, "{} requests", got.len());
    assert_eq!(sink.requests, got.len() as u64);
    let resources: Vec<_> = got.iter().flat_map(|s| s.resources.clone()).collect();
    assert_eq!(resources, snapshot.resources);
}

/// A TCP endpoint that accepts connections and never answers; returns its address.
fn silent_endpoint() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    addr
}

/// Runs `f` on a thread; panics if it has not returned within 20 s.
fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the exporter hung")
}

#[test]
fn a_silent_endpoint_times_out_instead_of_hanging() {
    let options = ExportOptions {
        connect_timeout: std::time::Duration::from_millis(300),
        request_timeout: std::time::Duration::from_millis(300),
        ..ExportOptions::default()
    };
    let snapshot = simulator().next_snapshot().clone();
    let addr = silent_endpoint();
    let http = {
        let snapshot = snapshot.clone();
        within_20s(move || {
            OtlpHttp::with_options(&format!("http://{addr}"), options)
                .unwrap()
                .export(&snapshot)
        })
    };
    assert!(http.is_err());
    let addr = silent_endpoint();
    let grpc = within_20s(move || {
        OtlpGrpc::connect_with(&format!("http://{addr}"), options)
            .and_then(|mut sink| sink.export(&snapshot))
    });
    let err = grpc.unwrap_err();
    assert!(matches!(err, phoenix_sim::Error::Export { .. }), "{err}");
}

#[test]
fn otlp_grpc_delivers_every_snapshot() {
    let received = Received::default();
    let incoming = {
        let (tx, rx) = std::sync::mpsc::channel();
        let service = MetricsService(Arc::clone(&received));
        background(async move {
            let incoming =
                tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap())
                    .unwrap();
            tx.send(incoming.local_addr().unwrap()).unwrap();
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        rx.recv().unwrap()
    };
    let mut sim = simulator();
    let mut sink = OtlpGrpc::connect(&format!("http://{incoming}")).unwrap();
    let summary = run(&mut sim, 5, Pace::Fast, &mut sink, &mut |_| {}).unwrap();
    let got = received.lock().unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(&got[4], sim.snapshot());
    assert_eq!(
        got.iter().map(Snapshot::data_point_count).sum::<usize>() as u64,
        summary.stats.data_points
    );
}

#[test]
fn otlp_http_posts_protobuf_to_v1_metrics() {
    let received = Received::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let store = Arc::clone(&received);
    background(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        let app = axum::Router::new().route(
            "/v1/metrics",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let store = Arc::clone(&store);
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    store
                        .lock()
                        .unwrap()
                        .push(phoenix_core::otlp::decode_protobuf(&body).unwrap());
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let addr: SocketAddr = rx.recv().unwrap();
    let mut sim = simulator();
    let mut sink = OtlpHttp::new(&format!("http://{addr}")).unwrap();
    assert_eq!(sink.url(), format!("http://{addr}/v1/metrics"));
    run(&mut sim, 4, Pace::Fast, &mut sink, &mut |_| {}).unwrap();
    let got = received.lock().unwrap();
    assert_eq!(got.len(), 4);
    assert_eq!(&got[3], sim.snapshot());
    assert!(
        OtlpHttp::new("https://collector:4318").is_err(),
        "TLS is not built in"
    );
    let mut nowhere = OtlpHttp::new("http://127.0.0.1:1").unwrap();
    assert!(nowhere.export(sim.snapshot()).is_err());
}

#[test]
fn prometheus_serves_the_snapshot_and_own_metrics() {
    let mut server = PrometheusServer::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut sim = simulator();
    run(&mut sim, 3, Pace::Fast, &mut server, &mut |_| {}).unwrap();
    let url = format!("http://{}/metrics", server.local_addr());
    let body = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        body.contains("# TYPE process_cpu_time_seconds_total counter"),
        "{body}"
    );
    assert!(body.contains("# TYPE process_memory_usage_bytes gauge"));
    assert!(body.contains("process_executable_name=\"systemd\""));
    assert!(body.contains(&format!(
        "phoenix_sim_active_processes {}",
        sim.stats().live_processes
    )));
    assert!(body.contains(&format!(
        "phoenix_sim_process_starts_total {}",
        sim.stats().starts
    )));
    assert!(body.contains("phoenix_sim_process_exits_total "));
    assert!(body.contains(&format!(
        "phoenix_sim_series_emitted_total {}",
        sim.stats().series_emitted
    )));
    let samples = body.lines().filter(|l| l.starts_with("process_")).count();
    assert_eq!(samples, sim.snapshot().data_point_count());
}
