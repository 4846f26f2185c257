//! `vpc-probe serve`: the suite on its schedule behind `/metrics`.

use super::exit::{settle, Exit};
use super::{load, runtime};
use crate::cli::ServeArgs;
use crate::config;
use crate::serve;

pub(super) fn serve(args: ServeArgs) -> Exit {
    settle(served(args))
}

fn served(args: ServeArgs) -> Result<Exit, Exit> {
    let suite = load(&args.suite)?;
    let options = serve::Options {
        suite: args.suite.suite,
        listen: args.listen,
        interval: args.interval,
        loader: |path| Ok(config::load(path)?),
    };
    let runtime = runtime()?;
    let served = runtime.block_on(serve::run(options, suite));
    // Checks abandoned at shutdown must not hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
        .map(|()| Exit::Pass)
        .map_err(|err| Exit::error(format!("{err:#}")))
}
