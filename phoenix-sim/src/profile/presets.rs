//! The built-in presets. Their numbers are documented in `docs/simulator.md`.

use phoenix_core::experiment::ProfilePreset;

use super::{
    Chaos, CpuPattern, CpuPatternKind, CpuSpikes, DurationRange, ForkBursts, HostSpec,
    HumanDuration, IoRates, MemoryPattern, MemoryPatternKind, NumberRange, ProcessGroup, Profile,
};

pub(super) fn build(preset: ProfilePreset) -> Profile {
    match preset {
        ProfilePreset::Realistic => realistic(),
        ProfilePreset::HighCardinality => high_cardinality(),
        ProfilePreset::HighChurn => high_churn(),
        ProfilePreset::Chaos => chaos(),
        // `ProfilePreset` may grow; a preset this crate does not know yet runs as realistic.
        #[allow(unreachable_patterns)]
        _ => realistic(),
    }
}

/// A small builder over [`ProcessGroup`] to keep the presets readable.
struct G(ProcessGroup);

impl G {
    fn new(name: &str, count: u32) -> Self {
        Self(ProcessGroup::new(name, count))
    }
    fn id(mut self, id: &str) -> Self {
        self.0.id = Some(id.to_owned());
        self
    }
    fn path(mut self, path: &str) -> Self {
        self.0.path = Some(path.to_owned());
        self
    }
    fn cmd(mut self, cmd: &str) -> Self {
        self.0.command_line = Some(cmd.to_owned());
        self
    }
    fn owner(mut self, owner: &str) -> Self {
        self.0.owner = owner.to_owned();
        self
    }
    fn parent(mut self, parent: &str) -> Self {
        self.0.parent = Some(parent.to_owned());
        self
    }
    fn kernel(mut self) -> Self {
        self.0.kernel_thread = true;
        self.0.cpu = CpuPattern::between(CpuPatternKind::Random, 0.0, 0.002);
        self.0.cpu.system_share = 1.0;
        self
    }
    fn cpu(mut self, cpu: CpuPattern) -> Self {
        self.0.cpu = cpu;
        self
    }
    fn steady(self, cores: f64, rss_mib: f64) -> Self {
        self.cpu(CpuPattern::steady(cores))
            .mem(MemoryPattern::steady(rss_mib))
    }
    fn mem(mut self, memory: MemoryPattern) -> Self {
        self.0.memory = memory;
        self
    }
    fn io(mut self, read_kib: f64, write_kib: f64) -> Self {
        self.0.io = IoRates {
            read_kib_per_second: read_kib,
            write_kib_per_second: write_kib,
        };
        self
    }
    fn threads(mut self, threads: u32) -> Self {
        self.0.threads = threads;
        self
    }
    fn churn(mut self, rate: f64) -> Self {
        self.0.churn_rate = rate;
        self
    }
    fn ago(mut self, ago: DurationRange) -> Self {
        self.0.started_ago = Some(ago);
        self
    }
    fn spawn(mut self, per_second: NumberRange, lifetime: DurationRange) -> Self {
        self.0.spawn_per_second = Some(per_second);
        self.0.lifetime = Some(lifetime);
        self
    }
    fn build(self) -> ProcessGroup {
        self.0
    }
}

fn pattern(kind: CpuPatternKind, cores: f64, peak: f64, period_secs: u64) -> CpuPattern {
    CpuPattern {
        period: Some(HumanDuration::from_secs(period_secs)),
        ..CpuPattern::between(kind, cores, peak)
    }
}

fn memory(kind: MemoryPatternKind, rss: f64, peak: f64, period_secs: u64) -> MemoryPattern {
    MemoryPattern {
        pattern: kind,
        peak_mib: Some(peak),
        period: Some(HumanDuration::from_secs(period_secs)),
        ..MemoryPattern::steady(rss)
    }
}

const HOURS: u64 = 3600;

/// The processes of a typical 8-core application server (≈ 150 processes).
fn base_groups() -> Vec<ProcessGroup> {
    let recent = DurationRange::secs(HOURS);
    let days = DurationRange::new(
        std::time::Duration::from_secs(6 * HOURS),
        std::time::Duration::from_secs(40 * HOURS),
    );
    vec![
        G::new("systemd", 1)
            .path("/usr/lib/systemd/systemd")
            .cmd("/sbin/init splash")
            .steady(0.002, 12.0)
            .build(),
        G::new("kthreadd", 1).kernel().build(),
        G::new("ksoftirqd/{index}", 8).kernel().build(),
        G::new("migration/{index}", 8).kernel().build(),
        G::new("cpuhp/{index}", 8).kernel().build(),
        G::new("kworker/{index}:0H-events_highpri", 8).kernel().build(),
        G::new("kworker/{index}:1-events", 8).kernel().churn(0.002).build(),
        G::new("kworker/u16:{index}-events_unbound", 6)
            .kernel()
            .churn(0.005)
            .build(),
        G::new("{pick:rcu_preempt|kswapd0|khungtaskd|oom_reaper|kcompactd0|kauditd|jbd2/nvme0n1p1-8|watchdogd}", 8)
            .id("kernel-misc")
            .kernel()
            .build(),
        G::new("systemd-journald", 1)
            .path("/usr/lib/systemd/systemd-journald")
            .steady(0.004, 48.0)
            .io(0.0, 24.0)
            .build(),
        G::new("systemd-udevd", 1)
            .path("/usr/lib/systemd/systemd-udevd")
            .steady(0.0005, 9.0)
            .build(),
        G::new("systemd-networkd", 1)
            .path("/usr/lib/systemd/systemd-networkd")
            .owner("systemd-network")
            .steady(0.0003, 8.0)
            .build(),
        G::new("systemd-resolved", 1)
            .path("/usr/lib/systemd/systemd-resolved")
            .owner("systemd-resolve")
            .steady(0.0008, 12.0)
            .build(),
        G::new("systemd-timesyncd", 1)
            .path("/usr/lib/systemd/systemd-timesyncd")
            .owner("systemd-timesync")
            .steady(0.0001, 7.0)
            .build(),
        G::new("systemd-logind", 1)
            .path("/usr/lib/systemd/systemd-logind")
            .steady(0.0002, 7.5)
            .build(),
        G::new("dbus-daemon", 1)
            .cmd("@dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only")
            .owner("messagebus")
            .steady(0.0004, 5.0)
            .build(),
        G::new("rsyslogd", 1)
            .path("/usr/sbin/rsyslogd")
            .cmd("{path} -n -iNONE")
            .owner("syslog")
            .steady(0.001, 6.0)
            .io(0.0, 12.0)
            .threads(4)
            .build(),
        G::new("cron", 1)
            .path("/usr/sbin/cron")
            .cmd("{path} -f -P")
            .steady(0.0001, 2.5)
            .build(),
        G::new("sshd", 1)
            .path("/usr/sbin/sshd")
            .cmd("sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups")
            .steady(0.0001, 8.0)
            .build(),
        G::new("agetty", 2)
            .path("/usr/sbin/agetty")
            .cmd("/sbin/agetty -o -p -- \\u --noclear tty{index} linux")
            .steady(0.0, 2.0)
            .build(),
        G::new("containerd", 1)
            .path("/usr/bin/containerd")
            .cpu(pattern(CpuPatternKind::Random, 0.01, 0.04, 600))
            .mem(MemoryPattern::steady(62.0))
            .threads(18)
            .io(2.0, 40.0)
            .build(),
        G::new("dockerd", 1)
            .path("/usr/bin/dockerd")
            .cmd("{path} -H fd:// --containerd=/run/containerd/containerd.sock")
            .cpu(pattern(CpuPatternKind::Random, 0.005, 0.02, 600))
            .mem(MemoryPattern::steady(95.0))
            .threads(22)
            .build(),
        G::new("otelcol-contrib", 1)
            .cmd("{path} --config=/etc/otelcol-contrib/config.yaml")
            .owner("otelcol-contrib")
            .cpu(pattern(CpuPatternKind::Spiky, 0.03, 0.25, 600))
            .mem(memory(MemoryPatternKind::Sine, 160.0, 210.0, 1800))
            .threads(14)
            .ago(recent)
            .build(),
        G::new("node_exporter", 1)
            .path("/usr/local/bin/node_exporter")
            .cmd("{path} --collector.systemd --web.listen-address=:9100")
            .owner("prometheus")
            .steady(0.004, 22.0)
            .threads(9)
            .build(),
        G::new("irqbalance", 1)
            .path("/usr/sbin/irqbalance")
            .cmd("{path} --foreground")
            .steady(0.0003, 3.5)
            .build(),
        G::new("polkitd", 1)
            .path("/usr/lib/polkit-1/polkitd")
            .cmd("{path} --no-debug")
            .owner("polkitd")
            .steady(0.0, 9.0)
            .build(),
        G::new("nginx", 1)
            .id("nginx-master")
            .path("/usr/sbin/nginx")
            .cmd("nginx: master process /usr/sbin/nginx -g daemon on; master_process on;")
            .steady(0.0, 3.0)
            .build(),
        G::new("nginx", 4)
            .id("nginx-worker")
            .path("/usr/sbin/nginx")
            .cmd("nginx: worker process")
            .owner("www-data")
            .parent("nginx-master")
            .cpu(pattern(CpuPatternKind::Sine, 0.02, 0.12, 3600))
            .mem(MemoryPattern::steady(9.5))
            .io(1.0, 30.0)
            .build(),
        G::new("postgres", 1)
            .id("postgres-main")
            .path("/usr/lib/postgresql/16/bin/postgres")
            .cmd("{path} -D /var/lib/postgresql/16/main -c config_file=/etc/postgresql/16/main/postgresql.conf")
            .owner("postgres")
            .steady(0.002, 30.0)
            .build(),
        G::new("postgres", 5)
            .id("postgres-aux")
            .path("/usr/lib/postgresql/16/bin/postgres")
            .cmd("postgres: 16/main: {pick:checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher}")
            .owner("postgres")
            .parent("postgres-main")
            .cpu(pattern(CpuPatternKind::Spiky, 0.002, 0.08, 300))
            .mem(MemoryPattern::steady(14.0))
            .io(16.0, 120.0)
            .build(),
        G::new("postgres", 20)
            .id("postgres-backend")
            .path("/usr/lib/postgresql/16/bin/postgres")
            .cmd("postgres: 16/main: app appdb {ip}({port}) {random:idle|idle|idle|SELECT|idle in transaction}")
            .owner("postgres")
            .parent("postgres-main")
            .cpu(pattern(CpuPatternKind::Random, 0.0, 0.06, 60))
            .mem(memory(MemoryPatternKind::Random, 18.0, 64.0, 60))
            .io(40.0, 8.0)
            .churn(0.002)
            .ago(recent)
            .build(),
        G::new("redis-server", 1)
            .path("/usr/bin/redis-server")
            .cmd("{path} 127.0.0.1:6379")
            .owner("redis")
            .cpu(pattern(CpuPatternKind::Sine, 0.01, 0.05, 3600))
            .mem(memory(MemoryPatternKind::Growing, 180.0, 420.0, 24 * HOURS))
            .threads(5)
            .build(),
        G::new("java", 2)
            .id("orders-service")
            .path("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
            .cmd("{path} -Xms512m -Xmx2g -XX:+UseG1GC -jar /opt/orders/orders-service.jar --server.port=808{index}")
            .owner("app")
            .cpu(pattern(CpuPatternKind::Sine, 0.15, 0.45, 4 * HOURS))
            .mem(memory(MemoryPatternKind::Sine, 900.0, 1400.0, 20 * 60))
            .threads(64)
            .io(5.0, 60.0)
            .ago(days)
            .build(),
        G::new("node", 2)
            .id("web-frontend")
            .path("/usr/bin/node")
            .cmd("node /srv/web/server.js --port 300{index}")
            .owner("app")
            .cpu(pattern(CpuPatternKind::Spiky, 0.04, 0.6, 600))
            .mem(memory(MemoryPatternKind::Random, 120.0, 180.0, 60))
            .threads(11)
            .ago(days)
            .build(),
        G::new("gunicorn", 1)
            .id("gunicorn-master")
            .path("/usr/bin/python3.12")
            .cmd("/srv/api/venv/bin/python3 /srv/api/venv/bin/gunicorn api.wsgi:application --workers 4 --bind 127.0.0.1:8000")
            .owner("www-data")
            .steady(0.001, 28.0)
            .ago(days)
            .build(),
        G::new("gunicorn", 4)
            .id("gunicorn-worker")
            .path("/usr/bin/python3.12")
            .cmd("/srv/api/venv/bin/python3 /srv/api/venv/bin/gunicorn api.wsgi:application --workers 4 --bind 127.0.0.1:8000")
            .owner("www-data")
            .parent("gunicorn-master")
            .cpu(pattern(CpuPatternKind::Random, 0.01, 0.2, 60))
            .mem(memory(MemoryPatternKind::Growing, 70.0, 140.0, 12 * HOURS))
            .churn(0.0005)
            .ago(days)
            .build(),
        G::new("php-fpm8.3", 1)
            .id("php-fpm-master")
            .path("/usr/sbin/php-fpm8.3")
            .cmd("php-fpm: master process (/etc/php/8.3/fpm/php-fpm.conf)")
            .steady(0.0005, 20.0)
            .build(),
        G::new("php-fpm8.3", 8)
            .id("php-fpm-worker")
            .path("/usr/sbin/php-fpm8.3")
            .cmd("php-fpm: pool www")
            .owner("www-data")
            .parent("php-fpm-master")
            .cpu(pattern(CpuPatternKind::Spiky, 0.005, 0.3, 60))
            .mem(memory(MemoryPatternKind::Random, 24.0, 48.0, 60))
            .churn(0.001)
            .ago(recent)
            .build(),
        G::new("memcached", 1)
            .path("/usr/bin/memcached")
            .cmd("{path} -m 256 -p 11211 -u memcache -l 127.0.0.1 -P /var/run/memcached/memcached.pid")
            .owner("memcache")
            .cpu(pattern(CpuPatternKind::Random, 0.001, 0.01, 60))
            .mem(MemoryPattern::steady(70.0))
            .threads(10)
            .build(),
        G::new("ruby", 3)
            .id("sidekiq")
            .path("/usr/bin/ruby3.2")
            .cmd("sidekiq 7.2.4 app [{index} of 10 busy]")
            .owner("app")
            .cpu(pattern(CpuPatternKind::Spiky, 0.01, 0.5, 60))
            .mem(memory(MemoryPatternKind::Growing, 180.0, 320.0, 6 * HOURS))
            .threads(12)
            .ago(days)
            .build(),
        G::new("containerd-shim", 4)
            .id("docker-shim")
            .path("/usr/bin/containerd-shim-runc-v2")
            .cmd("{path} -namespace moby -id {hex} -address /run/containerd/containerd.sock")
            .steady(0.0005, 8.0)
            .threads(11)
            .ago(days)
            .build(),
        G::new("{pick:grafana|prometheus|loki|alertmanager}", 4)
            .id("container-app")
            .path("/usr/bin/{name}")
            .cmd("{path} --config.file=/etc/{name}/config.yml")
            .owner("")
            .parent("docker-shim")
            .cpu(pattern(CpuPatternKind::Sine, 0.01, 0.08, 1800))
            .mem(memory(MemoryPatternKind::Sine, 90.0, 160.0, 3600))
            .threads(16)
            .ago(days)
            .build(),
        G::new("sshd", 1)
            .id("sshd-session")
            .path("/usr/sbin/sshd")
            .cmd("sshd: deploy [priv]")
            .parent("sshd")
            .steady(0.0, 10.0)
            .ago(recent)
            .build(),
        G::new("bash", 2)
            .path("/usr/bin/bash")
            .cmd("-bash")
            .owner("deploy")
            .parent("sshd-session")
            .steady(0.0, 5.0)
            .ago(recent)
            .build(),
        // Cron jobs: about one a minute, living seconds to a minute and a half.
        G::new("{random:logrotate|run-parts|sh|backup.sh|certbot|apt-check}", 0)
            .id("cron-job")
            .path("/usr/bin/{name}")
            .cmd("{path} {random:--quiet|/etc/cron.hourly|-c /usr/local/bin/housekeeping|--daily|--renew}")
            .parent("cron")
            .cpu(pattern(CpuPatternKind::Random, 0.05, 0.4, 60))
            .mem(memory(MemoryPatternKind::Random, 4.0, 30.0, 60))
            .io(200.0, 50.0)
            .spawn(NumberRange::new(0.0167, 0.0167), DurationRange::secs(2).to(90))
            .build(),
    ]
}

impl DurationRange {
    /// This range with its maximum set to `max_secs` seconds.
    const fn to(self, max_secs: u64) -> Self {
        Self::new(self.min, std::time::Duration::from_secs(max_secs))
    }
}

fn realistic() -> Profile {
    Profile {
        name: "realistic".to_owned(),
        description: "A typical 8-core application server: systemd and kernel threads, system daemons, nginx, PostgreSQL, Redis, memcached, Java, Node.js, gunicorn, PHP-FPM and Sidekiq workers, four Docker containers, SSH sessions and a cron job about once a minute. 139 processes, low churn.".to_owned(),
        host: HostSpec::default(),
        groups: base_groups(),
        chaos: None,
    }
}

fn high_cardinality() -> Profile {
    let mut groups = base_groups();
    groups.push(
        G::new("containerd-shim", 500)
            .path("/usr/bin/containerd-shim-runc-v2")
            .cmd("{path} -namespace k8s.io -id {hex} -address /run/containerd/containerd.sock")
            .steady(0.0005, 9.0)
            .threads(12)
            .build(),
    );
    groups.push(
        G::new("pause", 500)
            .path("/pause")
            .cmd("/pause")
            .owner("")
            .parent("containerd-shim")
            .steady(0.0, 0.4)
            .build(),
    );
    groups.push(
        G::new("python3", 400)
            .id("queue-worker")
            .path("/usr/bin/python3.11")
            .cmd("python3 /app/worker.py --shard={index} --queue=jobs-{hex12} --concurrency=2")
            .owner("app")
            .cpu(pattern(CpuPatternKind::Random, 0.0, 0.003, 60))
            .mem(MemoryPattern::steady(42.0))
            .ago(DurationRange::new(
                std::time::Duration::from_secs(HOURS),
                std::time::Duration::from_secs(48 * HOURS),
            ))
            .build(),
    );
    Profile {
        name: "high-cardinality".to_owned(),
        description: "The realistic server turned into a busy Kubernetes node: plus 500 containerd shims with unique container ids, their 500 pause processes and 400 queue workers with unique shard and queue arguments. 1,539 mostly idle processes, low churn.".to_owned(),
        host: HostSpec {
            memory_mib: 65_536,
            cpus: 32,
            pid_max: 4_194_304,
            ..HostSpec::default()
        },
        groups,
        chaos: None,
    }
}

fn high_churn() -> Profile {
    let mut groups = base_groups();
    groups.push(
        G::new("gitlab-runner", 1)
            .path("/usr/bin/gitlab-runner")
            .cmd("{path} run --working-directory /home/gitlab-runner --config /etc/gitlab-runner/config.toml --service gitlab-runner --user gitlab-runner")
            .steady(0.01, 40.0)
            .threads(12)
            .build(),
    );
    let job = |id: &str, name: &str, cmd: &str, rate: NumberRange, life: DurationRange| {
        G::new(name, 0)
            .id(id)
            .path("/usr/bin/{name}")
            .cmd(cmd)
            .owner("gitlab-runner")
            .parent("gitlab-runner")
            .cpu(pattern(CpuPatternKind::Random, 0.05, 0.9, 60))
            .mem(memory(MemoryPatternKind::Random, 3.0, 40.0, 60))
            .io(500.0, 200.0)
            .spawn(rate, life)
            .build()
    };
    groups.push(job(
        "job-sh",
        "sh",
        "/bin/sh -c curl -fsS http://{ip}:{port}/healthz",
        NumberRange::new(6.0, 9.0),
        DurationRange::millis(200, 3000),
    ));
    groups.push(job(
        "job-curl",
        "curl",
        "curl -fsS --max-time 5 http://{ip}:{port}/api/v1/status?job={rand}",
        NumberRange::new(6.0, 9.0),
        DurationRange::millis(100, 2000),
    ));
    groups.push(job(
        "job-python",
        "python3",
        "/usr/bin/python3 /opt/jobs/{random:lint|test|package|deploy}.py --job-id {rand}",
        NumberRange::new(4.0, 6.0),
        DurationRange::millis(2000, 20_000),
    ));
    groups.push(job(
        "job-git",
        "git",
        "git fetch --depth 1 origin refs/heads/feature-{hex12}",
        NumberRange::new(4.0, 6.0),
        DurationRange::millis(500, 6000),
    ));
    Profile {
        name: "high-churn".to_owned(),
        description: "The realistic server plus a CI runner starting 20-30 short-lived processes per second (sh, curl, python3, git; 0.1-20 s each), about 90 of them alive at any instant, every one with a new pid. Pids wrap past 32768 within minutes.".to_owned(),
        host: HostSpec::default(),
        groups,
        chaos: None,
    }
}

fn chaos() -> Profile {
    let mut groups = base_groups();
    for group in &mut groups {
        if group.key() == "web-frontend" {
            group.memory = MemoryPattern {
                pattern: MemoryPatternKind::Leaking,
                leak_mib_per_hour: Some(400.0),
                limit_mib: Some(1536.0),
                ..MemoryPattern::steady(120.0)
            };
            group.started_ago = Some(DurationRange::secs(HOURS));
        }
        if group.key() == "orders-service" {
            group.restart_delay = DurationRange::secs(5).to(30);
        }
    }
    Profile {
        name: "chaos".to_owned(),
        description: "The realistic server having a bad day: every service process crashes about once in 10 hours and is restarted with a new pid, 1% of processes spike to 0.5-3.5 cores for 10 s to 2 min each interval, the Node.js frontends leak 400 MiB an hour until the OOM killer takes them at 1.5 GiB, and 12 times an hour a gunicorn, PHP-FPM or Node.js process forks 20-200 children living 1-60 s.".to_owned(),
        host: HostSpec::default(),
        groups,
        chaos: Some(Chaos {
            crashes_per_process_hour: 0.1,
            cpu_spikes: Some(CpuSpikes {
                probability: 0.01,
                cores: NumberRange::new(0.5, 3.5),
                duration: DurationRange::secs(10).to(120),
            }),
            fork_bursts: Some(ForkBursts {
                per_hour: 12.0,
                size: NumberRange::new(20.0, 200.0),
                lifetime: DurationRange::secs(1).to(60),
                parents: vec![
                    "gunicorn-worker".to_owned(),
                    "php-fpm-worker".to_owned(),
                    "web-frontend".to_owned(),
                ],
            }),
        }),
    }
}
