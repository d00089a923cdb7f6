//! A fake Kubernetes API server behind kube's `Client`, on tower-test's mock service.
//!
//! It keeps objects in memory by path and implements what the reconcilers use: GET, POST,
//! DELETE, server-side apply, JSON merge patch (with `metadata.resourceVersion` as a
//! precondition), and the JSON patch operations kube's finalizer helper sends, on objects and
//! their `/status` subresource. Every request is recorded; a test can make requests fail.

#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The query string.
    pub query: String,
    /// `Content-Type`.
    pub content_type: String,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

type Failure = Box<dyn Fn(&Recorded) -> Option<u16> + Send>;
type Rejection = Box<dyn Fn(&Recorded) -> Option<Value> + Send>;

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    log: Vec<Recorded>,
    version: u64,
    failures: Vec<Failure>,
    rejections: Vec<Rejection>,
    held: Vec<String>,
}

/// The fake server's shared state.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().unwrap();
            for (k, v) in fields {
                if v.is_null() {
                    map.remove(k);
                } else {
                    merge(map.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn pointer_parent<'a>(target: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let (parent, last) = path.rsplit_once('/')?;
    let parent = if parent.is_empty() {
        Some(target)
    } else {
        target.pointer_mut(parent)
    }?;
    Some((parent, last.replace("~1", "/").replace("~0", "~")))
}

/// Applies JSON patch `test`, `add`, `remove` and `replace` operations.
fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    for op in ops.as_array().ok_or("not an array")? {
        let path = op["path"].as_str().ok_or("no path")?;
        match op["op"].as_str() {
            Some("test") => {
                let found = target.pointer(path).cloned().unwrap_or(Value::Null);
                if found != op["value"] {
                    return Err(format!("test failed at {path}"));
                }
            }
            Some("add" | "replace") => {
                let value = op["value"].clone();
                let (parent, key) = pointer_parent(target, path).ok_or("bad path")?;
                match parent {
                    Value::Array(items) if key == "-" => items.push(value),
                    Value::Array(items) => {
                        let i: usize = key.parse().map_err(|_| "bad index")?;
                        items.insert(i, value);
                    }
                    Value::Object(map) => {
                        map.insert(key, value);
                    }
                    _ => return Err("bad parent".to_owned()),
                }
            }
            Some("remove") => {
                let (parent, key) = pointer_parent(target, path).ok_or("bad path")?;
                match parent {
                    Value::Array(items) => {
                        let i: usize = key.parse().map_err(|_| "bad index")?;
                        items.remove(i);
                    }
                    Value::Object(map) => {
                        map.remove(&key);
                    }
                    _ => return Err("bad parent".to_owned()),
                }
            }
            other => return Err(format!("unsupported op {other:?}")),
        }
    }
    Ok(())
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Status", "status": "Failure",
        "code": code, "reason": reason, "message": message, "metadata": {},
    })
}

impl FakeApi {
    /// A client talking to a new fake server, and the server.
    pub fn start() -> (Client, Self) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = Self::default();
        let server = fake.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().unwrap_or_default().to_owned(),
                    content_type: parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                let (code, body) = server.handle(&recorded);
                let response = Response::builder()
                    .status(StatusCode::from_u16(code).unwrap())
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap();
                respond.send_response(response);
            }
        });
        (Client::new(service, "default"), fake)
    }

    fn handle(&self, request: &Recorded) -> (u16, Value) {
        let mut state = self.state.lock().unwrap();
        state.log.push(request.clone());
        if let Some(code) = state.failures.iter().find_map(|f| f(request)) {
            let reason = match code {
                404 => "NotFound",
                409 => "Conflict",
                503 => "ServiceUnavailable",
                _ => "InternalError",
            };
            return (code, status(code, reason, "injected failure"));
        }
        if let Some(rejection) = state.rejections.iter().find_map(|f| f(request)) {
            return (422, rejection);
        }
        let (key, subresource) = match request.path.strip_suffix("/status") {
            Some(base) => (base.to_owned(), true),
            None => (request.path.clone(), false),
        };
        state.version += 1;
        let version = state.version.to_string();
        match request.method.as_str() {
            "GET" => match state.objects.get(&key) {
                Some(object) => (200, object.clone()),
                None => (404, status(404, "NotFound", &format!("{key} not found"))),
            },
            "POST" => {
                let mut object = request.body.clone();
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("generated")
                    .to_owned();
                let path = format!("{key}/{name}");
                if state.objects.contains_key(&path) && !key.ends_with("/events") {
                    return (409, status(409, "AlreadyExists", "exists"));
                }
                object["metadata"]["resourceVersion"] = json!(version);
                object["metadata"]["generation"] = json!(1);
                state.objects.insert(path, object.clone());
                (201, object)
            }
            "DELETE" if state.held.contains(&key) => match state.objects.get(&key) {
                Some(object) => (200, object.clone()),
                None => (404, status(404, "NotFound", &format!("{key} not found"))),
            },
            "DELETE" => match state.objects.remove(&key) {
                Some(_) => (
                    200,
                    json!({"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 200, "metadata": {}}),
                ),
                None => (404, status(404, "NotFound", &format!("{key} not found"))),
            },
            "PATCH" => {
                let existing = state.objects.get(&key).cloned();
                let ct = request.content_type.as_str();
                let mut object = match (existing, ct) {
                    (Some(o), _) => o,
                    (None, c) if c.contains("apply-patch") => json!({}),
                    (None, _) => {
                        return (404, status(404, "NotFound", &format!("{key} not found")));
                    }
                };
                let before_spec = object.get("spec").cloned();
                if ct.contains("json-patch") {
                    if let Err(e) = json_patch(&mut object, &request.body) {
                        return (422, status(422, "Invalid", &e));
                    }
                } else {
                    let wanted = request.body["metadata"]["resourceVersion"].as_str();
                    let current = object["metadata"]["resourceVersion"].as_str();
                    if wanted.is_some() && wanted != current {
                        return (409, status(409, "Conflict", "the object has been modified"));
                    }
                    let mut patch = request.body.clone();
                    if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("resourceVersion");
                    }
                    if subresource {
                        let status = patch.get("status").cloned().unwrap_or(Value::Null);
                        merge(&mut object, &json!({"status": status}));
                    } else {
                        if ct.contains("apply-patch") {
                            if let Some(spec) = patch.get("spec") {
                                object["spec"] = spec.clone();
                            }
                            if let Some(data) = patch.get("data") {
                                object["data"] = data.clone();
                            }
                        }
                        merge(&mut object, &patch);
                    }
                }
                let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
                if generation == 0 || object.get("spec").cloned() != before_spec {
                    object["metadata"]["generation"] = json!(generation + 1);
                }
                object["metadata"]["resourceVersion"] = json!(version);
                state.objects.insert(key, object.clone());
                (200, object)
            }
            other => (405, status(405, "MethodNotAllowed", other)),
        }
    }

    /// Stores an object at `path` (its resourceVersion and generation set if missing).
    pub fn put(&self, path: &str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        if object["metadata"]["resourceVersion"].is_null() {
            object["metadata"]["resourceVersion"] = json!(state.version.to_string());
        }
        if object["metadata"]["generation"].is_null() {
            object["metadata"]["generation"] = json!(1);
        }
        state.objects.insert(path.to_owned(), object);
    }

    /// The object at `path`.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    /// Merges `patch` into the object at `path`.
    pub fn merge(&self, path: &str, patch: &Value) {
        let mut state = self.state.lock().unwrap();
        if let Some(object) = state.objects.get_mut(path) {
            merge(object, patch);
        }
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().log.clone()
    }

    /// Requests with this method whose path contains `fragment`.
    pub fn requests(&self, method: &str, fragment: &str) -> Vec<Recorded> {
        self.log()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(fragment))
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// Fails every request for which `rule` returns a status code.
    pub fn fail_when(&self, rule: impl Fn(&Recorded) -> Option<u16> + Send + 'static) {
        self.state.lock().unwrap().failures.push(Box::new(rule));
    }

    /// Refuses every request for which `rule` holds as the API server refuses an invalid
    /// object: 422, reason `Invalid`, with one cause naming `field`.
    pub fn reject_when(
        &self,
        rule: impl Fn(&Recorded) -> bool + Send + 'static,
        field: &str,
        message: &str,
    ) {
        let body = json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 422,
            "reason": "Invalid", "metadata": {},
            "message": format!("the object is invalid: {field}: {message}"),
            "details": {"causes": [
                {"reason": "FieldValueInvalid", "message": message, "field": field},
            ]},
        });
        self.state
            .lock()
            .unwrap()
            .rejections
            .push(Box::new(move |r| rule(r).then(|| body.clone())));
    }

    /// Makes a DELETE of `path` succeed without removing the object, as for an object whose
    /// dependents are still being deleted.
    pub fn hold_on_delete(&self, path: &str) {
        self.state.lock().unwrap().held.push(path.to_owned());
    }

    /// Removes an object held by [`hold_on_delete`](Self::hold_on_delete).
    pub fn release(&self, path: &str) {
        let mut state = self.state.lock().unwrap();
        state.held.retain(|p| p != path);
        state.objects.remove(path);
    }

    /// Stops failing requests.
    pub fn stop_failing(&self) {
        let mut state = self.state.lock().unwrap();
        state.failures.clear();
        state.rejections.clear();
    }

    /// How many times an event was published (created, or a repeated one patched).
    pub fn events_published(&self) -> usize {
        self.requests("POST", "/events").len() + self.requests("PATCH", "/events/").len()
    }

    /// The reasons of the events published so far.
    pub fn event_reasons(&self) -> Vec<String> {
        self.requests("POST", "/events")
            .iter()
            .map(|r| r.body["reason"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}
