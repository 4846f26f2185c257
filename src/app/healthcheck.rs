//! `vpc-probe healthcheck`: the ECS container health check, in CMD form
//! (the image has no shell), against `/readyz`.

use super::exit::Exit;
use crate::cli::HealthcheckArgs;
use crate::net::fetch;

pub(super) fn healthcheck(args: &HealthcheckArgs) -> Exit {
    let unhealthy = |why: String| Exit::Fail(Some(format!("unhealthy: {why}")));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return unhealthy(format!("cannot start the runtime: {err}")),
    };
    let answer = runtime.block_on(fetch::send(
        http::Method::GET,
        &args.url,
        None,
        args.timeout,
    ));
    match answer {
        Ok(response) if response.status.is_success() => Exit::Pass,
        Ok(response) => {
            let body = String::from_utf8_lossy(&response.body);
            unhealthy(format!("HTTP {}: {}", response.status, body.trim()))
        }
        Err(err) => unhealthy(format!("{err:#}")),
    }
}
