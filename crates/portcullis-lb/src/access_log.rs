//! The ALB access-log line, field for field, written off the request path by a background task.

use std::io::Write;
use tokio::sync::mpsc;

/// Lines buffered before new ones are dropped (and counted) rather than slowing requests.
const QUEUE: usize = 16 * 1024;

/// One request's log entry; `-` where ALB writes `-`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `http`, `https`, `h2`, `grpcs`, `ws`, `wss`.
    pub kind: &'static str,
    /// Response time, ISO 8601 with microseconds.
    pub time: String,
    /// `app/<name>/<id>`.
    pub elb: String,
    /// `ip:port` of the client.
    pub client: String,
    /// `ip:port` of the target or `-`.
    pub target: String,
    /// Seconds before dispatch, or -1.
    pub request_processing_time: f64,
    /// Seconds the target took, or -1.
    pub target_processing_time: f64,
    /// Seconds after the target answered, or -1.
    pub response_processing_time: f64,
    /// Status we sent.
    pub elb_status_code: u16,
    /// Status the target sent, or `-`.
    pub target_status_code: Option<u16>,
    /// Bytes received (headers estimated, plus declared body length).
    pub received_bytes: u64,
    /// Bytes sent (declared body length).
    pub sent_bytes: u64,
    /// `METHOD scheme://host:port/uri HTTP/x.y`.
    pub request: String,
    /// User agent, truncated at 8 KB.
    pub user_agent: String,
    /// OpenSSL cipher name or `-`.
    pub ssl_cipher: String,
    /// `TLSv1.2`, `TLSv1.3` or `-`.
    pub ssl_protocol: String,
    /// The chosen target group's ARN or `-`.
    pub target_group_arn: String,
    /// `X-Amzn-Trace-Id`.
    pub trace_id: String,
    /// SNI name or `-`.
    pub domain_name: String,
    /// 0 default rule, 1–50000, `-`.
    pub matched_rule_priority: String,
    /// When the request arrived.
    pub request_creation_time: String,
    /// `authenticate,forward`, ...
    pub actions_executed: Vec<&'static str>,
    /// Redirect target or `-`.
    pub redirect_url: String,
    /// ALB error reason or `-`.
    pub error_reason: String,
    /// Connection id.
    pub conn_trace_id: String,
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn secs(v: f64) -> String {
    if v < 0.0 {
        "-1".into()
    } else {
        format!("{v:.3}")
    }
}

impl Entry {
    /// An entry of this `kind` (`http`, `https`, `h2`, `grpcs`, `ws`, `wss`) with nothing else known yet: text fields
    /// empty (most are written as `-`), times -1, no status.
    pub fn blank(kind: &'static str) -> Entry {
        Entry {
            kind,
            time: String::new(),
            elb: String::new(),
            client: String::new(),
            target: String::new(),
            request_processing_time: -1.0,
            target_processing_time: -1.0,
            response_processing_time: -1.0,
            elb_status_code: 0,
            target_status_code: None,
            received_bytes: 0,
            sent_bytes: 0,
            request: String::new(),
            user_agent: String::new(),
            ssl_cipher: String::new(),
            ssl_protocol: String::new(),
            target_group_arn: String::new(),
            trace_id: String::new(),
            domain_name: String::new(),
            matched_rule_priority: String::new(),
            request_creation_time: String::new(),
            actions_executed: Vec::new(),
            redirect_url: String::new(),
            error_reason: String::new(),
            conn_trace_id: String::new(),
        }
    }

    /// The space-separated line, in ALB's field order.
    pub fn line(&self) -> String {
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        let target_status = self
            .target_status_code
            .map_or("-".into(), |s| s.to_string());
        let actions = if self.actions_executed.is_empty() {
            "-".into()
        } else {
            self.actions_executed.join(",")
        };
        [
            self.kind.to_string(),
            self.time.clone(),
            self.elb.clone(),
            self.client.clone(),
            dash(&self.target),
            secs(self.request_processing_time),
            secs(self.target_processing_time),
            secs(self.response_processing_time),
            self.elb_status_code.to_string(),
            target_status.clone(),
            self.received_bytes.to_string(),
            self.sent_bytes.to_string(),
            q(&self.request),
            q(&self.user_agent.chars().take(8192).collect::<String>()),
            dash(&self.ssl_cipher),
            dash(&self.ssl_protocol),
            dash(&self.target_group_arn),
            q(&dash(&self.trace_id)),
            q(&dash(&self.domain_name)),
            q("-"),
            dash(&self.matched_rule_priority),
            self.request_creation_time.clone(),
            q(&actions),
            q(&dash(&self.redirect_url)),
            q(&dash(&self.error_reason)),
            q(&dash(&self.target)),
            q(&target_status),
            q("-"),
            q("-"),
            dash(&self.conn_trace_id),
        ]
        .join(" ")
    }
}

/// Where log lines go.
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<String>>,
}

impl AccessLog {
    /// No access log.
    pub fn disabled() -> AccessLog {
        AccessLog { tx: None }
    }

    /// `"stdout"` or a file path (appended to).
    pub fn open(target: &str) -> std::io::Result<AccessLog> {
        let mut out: Box<dyn Write + Send> = if target == "stdout" {
            Box::new(std::io::stdout())
        } else {
            // Request lines can carry one-time codes (`/oauth2/idpresponse?code=`): owner only.
            Box::new(portcullis_config::state_dir::open_append(
                std::path::Path::new(target),
            )?)
        };
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut buf = std::io::BufWriter::new(&mut out);
                while let Some(line) = rx.blocking_recv() {
                    let _ = writeln!(buf, "{line}");
                    while let Ok(line) = rx.try_recv() {
                        let _ = writeln!(buf, "{line}");
                    }
                    let _ = buf.flush();
                }
            })?;
        Ok(AccessLog { tx: Some(tx) })
    }

    /// Whether entries are wanted (skip building them otherwise).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues an entry; drops it when the writer is far behind.
    pub fn write(&self, e: &Entry) {
        if let Some(tx) = &self.tx
            && tx.try_send(e.line()).is_err()
        {
            tracing::warn!("access log queue full; entry dropped");
        }
    }
}

/// Now as ALB writes times: `2018-07-02T22:23:00.186641Z`.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&f).unwrap_or_else(|_| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_alb_field_order() {
        let e = Entry {
            kind: "https",
            time: "2018-07-02T22:23:00.186641Z".into(),
            elb: "app/my-loadbalancer/50dc6c495c0c9188".into(),
            client: "192.168.131.39:2817".into(),
            target: "10.0.0.1:80".into(),
            request_processing_time: 0.086,
            target_processing_time: 0.048,
            response_processing_time: 0.037,
            elb_status_code: 200,
            target_status_code: Some(200),
            received_bytes: 0,
            sent_bytes: 57,
            request: "GET https://www.example.com:443/ HTTP/1.1".into(),
            user_agent: "curl/7.46.0".into(),
            ssl_cipher: "ECDHE-RSA-AES128-GCM-SHA256".into(),
            ssl_protocol: "TLSv1.2".into(),
            target_group_arn: "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067".into(),
            trace_id: "Root=1-58337281-1d84f3d73c47ec4e58577259".into(),
            domain_name: "www.example.com".into(),
            matched_rule_priority: "1".into(),
            request_creation_time: "2018-07-02T22:22:48.364000Z".into(),
            actions_executed: vec!["authenticate", "forward"],
            redirect_url: String::new(),
            error_reason: String::new(),
            conn_trace_id: String::new(),
        };
        assert_eq!(
            e.line(),
            "https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 \"GET https://www.example.com:443/ HTTP/1.1\" \"curl/7.46.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337281-1d84f3d73c47ec4e58577259\" \"www.example.com\" \"-\" 1 2018-07-02T22:22:48.364000Z \"authenticate,forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\" -"
        );
    }
}
