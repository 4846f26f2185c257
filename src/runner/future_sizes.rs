//! How large one check's future may grow, in bytes, in the test profile
//! (a debug build; release futures are smaller). One task per check holds
//! [`owned_check`]'s future; the kind's own future is boxed beside it.
//! Peak memory per check follows these, so a test fails when they grow.

use super::*;
use crate::check::InFlight;
use crate::check::Probe;

/// The task's own future, the same for every kind (360 B when this
/// bound was set; 6,040 B with the resolver and the check held inline;
/// 536 B once the probe carried idle steps and keepalives).
const TASK: usize = 640;

/// The kind's boxed future, from `spec.run`: about a third above its
/// size when the bound was set (tcp 1,264 B, dns 440, http 4,368,
/// redis 4,528, postgres 9,392; dns 608 once lookups were shared).
fn kind_bound(kind: crate::outcome::Kind) -> usize {
    use crate::outcome::Kind;
    match kind {
        Kind::Tcp => 1700,
        Kind::Dns => 800,
        Kind::Http => 6 * 1024,
        Kind::Redis => 6 * 1024,
        Kind::Postgres => 12 * 1024,
    }
}

/// The sizes of the two futures one check of `body` makes.
fn sizes(body: &str) -> (crate::outcome::Kind, usize, usize) {
    let text = format!("[[check]]\nname = \"x\"\n{body}\n");
    let suite = crate::config::parse(&text, "sizes.toml", "sizes").expect("suite");
    let check = suite.checks[0].clone();
    let net = Net::new(Some("127.0.0.1:9".parse().unwrap()), Duration::from_secs(1)).unwrap();
    let task = owned_check(
        net.clone(),
        Arc::new(check.clone()),
        Scrubber::default(),
        InFlight::default(),
    );
    let task_size = std::mem::size_of_val(&task);
    let mut probe = Probe::new(&net, Duration::from_secs(1), InFlight::default());
    let kind_future = check.spec.run(&mut probe);
    // The concrete size behind the box, read through its vtable.
    let kind_size = std::mem::size_of_val(&*kind_future);
    (check.spec.kind(), task_size, kind_size)
}

macro_rules! bounded {
    ($($name:ident: $body:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let (kind, task, own) = sizes($body);
            eprintln!("{kind:?}: task future {task} B, kind future {own} B");
            assert!(task <= TASK, "{kind:?}: the task's future is {task} B, over {TASK} B");
            let bound = kind_bound(kind);
            assert!(own <= bound, "{kind:?}: its future is {own} B, over {bound} B");
        }
    )*};
}

bounded! {
    tcp: "kind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 9";
    dns: "kind = \"dns\"\nhost = \"db.internal\"";
    http: "kind = \"http\"\nurl = \"http://127.0.0.1:9/\"";
    redis: "kind = \"redis\"\nurl = \"redis://127.0.0.1:9\"";
    postgres: "kind = \"postgres\"\nurl = \"postgres://probe@127.0.0.1:9/app\"";
}
