//! One run's reading: the region, the credentials, the app account (STS
//! GetCallerIdentity), the peer account through the read-only role (STS
//! AssumeRole), then both accounts' describes side by side, all inside the
//! run's `explain_timeout`.

use super::client::{Account, Pending, Service};
use super::fetch::{
    endpoint_vpcs, gateways_routed, read_account, read_endpoints, read_gateways, read_services,
    services_named, source_vpc, Part, Wanted,
};
use super::model::{Denied, World};
use super::settings::Settings;

/// Everything read for one run, what it cost, and what could not be read.
#[derive(Debug, Default)]
pub struct Reading {
    pub world: World,
    pub calls: usize,
    /// Why nothing (or part) was read: no credentials, no region, timeouts.
    pub skipped: Option<String>,
}

impl Reading {
    fn skipped(why: String) -> Reading {
        Reading {
            skipped: Some(why),
            ..Reading::default()
        }
    }
}

/// The region: [`super::settings::region`]'s rule.
pub fn region(settings: &Settings, task_zone: Option<&str>) -> Option<String> {
    super::settings::region(settings.region.as_deref(), task_zone)
}

/// A round of reads that needs what the first reading found.
#[derive(Debug, Clone, Copy)]
enum Round<'a> {
    /// The transit gateways of these ids.
    Gateways(&'a std::collections::BTreeSet<String>),
    /// The interface endpoints in these VPCs.
    Endpoints(&'a std::collections::BTreeSet<String>),
    /// The endpoint services of these names.
    Services(&'a std::collections::BTreeSet<String>),
}

/// The accounts of one run: the app's, and the peer's through its role.
#[derive(Debug)]
pub struct Session {
    app: Account,
    peer: Option<Account>,
    /// The transit gateway owner's account, through `network_role_arn`.
    network: Option<Account>,
    /// The roles that could not be assumed.
    denied: Vec<Denied>,
    budget: std::time::Duration,
}

/// Read what `wanted` needs from the app's account and the peer's, all
/// within the settings' `explain_timeout`.
pub async fn read(settings: &Settings, wanted: &Wanted, task_zone: Option<&str>) -> Reading {
    let budget = settings.explain_timeout;
    let pending = Pending::default();
    let whole = async {
        match Session::open_with(settings, task_zone, pending.clone()).await {
            Ok(session) => session.read_unbounded(wanted).await,
            Err(why) => Reading::skipped(why),
        }
    };
    tokio::time::timeout(budget, whole)
        .await
        .unwrap_or_else(|_| over_budget(budget, &pending))
}

/// A reading cut short: which calls it still waited for, and where.
fn over_budget(budget: std::time::Duration, pending: &Pending) -> Reading {
    let waiting: Vec<String> = pending
        .waiting()
        .iter()
        .map(|call| format!("{} at {}", call.action, call.endpoint))
        .collect();
    let waiting = match waiting.is_empty() {
        true => String::new(),
        false => format!(": still waiting for {}", waiting.join(", ")),
    };
    Reading::skipped(format!(
        "the AWS describes took longer than explain_timeout ({}){waiting}; \
         a VPC endpoint for the service, or a NAT route, gives the task a path there",
        humantime::format_duration(budget)
    ))
}

impl Session {
    /// Credentials, the app's account id, and the peer role's credentials.
    pub async fn open(settings: &Settings, task_zone: Option<&str>) -> Result<Session, String> {
        Session::open_with(settings, task_zone, Pending::default()).await
    }

    /// [`Session::open`], its calls noted in `pending`.
    async fn open_with(
        settings: &Settings,
        task_zone: Option<&str>,
        pending: Pending,
    ) -> Result<Session, String> {
        let region =
            region(settings, task_zone).ok_or("no AWS region: set [aws] region or AWS_REGION")?;
        let credentials = super::credentials::lookup().await?;
        let endpoint = settings.endpoint_url.clone();
        let unnamed = Account::new(
            String::new(),
            credentials,
            region.clone(),
            endpoint.clone(),
            pending.clone(),
        );
        let answer = unnamed
            .query(Service::Sts, "GetCallerIdentity", &[])
            .await
            .map_err(|err| match err.credentials_refused() {
                true => format!("AWS credentials not accepted: {err}"),
                false => format!("AWS could not be read: {err}"),
            })?;
        let app = unnamed.named(
            answer
                .find("Account")
                .map(|a| a.text.clone())
                .unwrap_or_default(),
        );
        let mut denied = Vec::new();
        let peer = assumed(&app, settings, settings.peer_role_arn.as_ref(), &mut denied).await;
        let network = assumed(
            &app,
            settings,
            settings.network_role_arn.as_ref(),
            &mut denied,
        )
        .await;
        Ok(Session {
            app,
            peer,
            network,
            denied,
            budget: settings.explain_timeout,
        })
    }

    /// Both accounts' describes for `wanted`, within the budget.
    pub async fn read(&self, wanted: &Wanted) -> Reading {
        tokio::time::timeout(self.budget, self.read_unbounded(wanted))
            .await
            .unwrap_or_else(|_| over_budget(self.budget, &self.app.pending))
    }

    async fn read_unbounded(&self, wanted: &Wanted) -> Reading {
        let peer = async {
            match &self.peer {
                Some(peer) => Some(read_account(peer, wanted, false).await),
                None => None,
            }
        };
        let (mut part, peer_part) = tokio::join!(read_account(&self.app, wanted, true), peer);
        let roles = usize::from(self.peer.is_some()) + usize::from(self.network.is_some());
        part.calls += 1 + roles.max(self.denied.len());
        if let Some(peer_part) = peer_part {
            part.merge(peer_part);
        }
        self.read_gateways(&mut part).await;
        self.read_privatelink(&mut part, wanted).await;
        part.world.denied.extend(self.denied.iter().cloned());
        finish(part)
    }

    /// The transit gateways any route table read points at, in every
    /// account at once: each sees its own attachments, the owner (the
    /// network account, or one of the two) the route tables.
    async fn read_gateways(&self, part: &mut Part) {
        let gateways = gateways_routed(part);
        if !gateways.is_empty() {
            self.in_every_account(part, Round::Gateways(&gateways))
                .await;
        }
    }

    /// The interface endpoints among the interfaces read, and, when names
    /// are asked about, those of the source's VPC (whose private DNS may
    /// answer them), in every account (each sees its own); then the services
    /// they lead to, read where they are provided: two more rounds, only
    /// when there is an endpoint to look for.
    async fn read_privatelink(&self, part: &mut Part, wanted: &Wanted) {
        let mut vpcs = endpoint_vpcs(part);
        if !wanted.hosts.is_empty() {
            vpcs.extend(source_vpc(part, wanted.source.as_ref()));
        }
        if vpcs.is_empty() {
            return;
        }
        self.in_every_account(part, Round::Endpoints(&vpcs)).await;
        let names = services_named(part);
        self.in_every_account(part, Round::Services(&names)).await;
    }

    /// One round of reads in every account side by side, merged into `part`.
    async fn in_every_account(&self, part: &mut Part, round: Round<'_>) {
        let reads = self.accounts().map(|account| async move {
            let mut read = Part::default();
            match round {
                Round::Gateways(ids) => read_gateways(&mut read, account, ids).await,
                Round::Endpoints(vpcs) => read_endpoints(&mut read, account, vpcs).await,
                Round::Services(names) => read_services(&mut read, account, names).await,
            }
            read
        });
        for read in futures_util::future::join_all(reads).await {
            part.merge(read);
        }
    }

    /// Every account of the run: the app's, the peer's, the network's.
    fn accounts(&self) -> impl Iterator<Item = &Account> {
        [Some(&self.app), self.peer.as_ref(), self.network.as_ref()]
            .into_iter()
            .flatten()
    }

    /// The A record of each name in the private zones of both accounts,
    /// and the zone that holds it, for `paths`, which sends no traffic
    /// (not even DNS). Whether that zone answers in the source's VPC is
    /// the caller's to judge, from the reading.
    pub async fn resolve(
        &self,
        names: &std::collections::BTreeSet<String>,
    ) -> std::collections::BTreeMap<String, (std::net::Ipv4Addr, String)> {
        let wanted = Wanted {
            hosts: names.clone(),
            ..Wanted::default()
        };
        let mut found = std::collections::BTreeMap::new();
        for account in std::iter::once(&self.app).chain(&self.peer) {
            let mut part = Part::default();
            super::fetch::zones_of(&mut part, account, &wanted).await;
            for name in names {
                let zone = part
                    .world
                    .zones
                    .iter()
                    .filter(|z| name.ends_with(&z.name))
                    .max_by_key(|z| z.name.len());
                let Some(zone) = zone else { continue };
                if let Some(address) = super::fetch::record(account, &zone.id, name).await {
                    found
                        .entry(name.clone())
                        .or_insert((address, zone.id.clone()));
                }
            }
        }
        found
    }
}

/// The account behind `arn`, through STS AssumeRole from the app's; a
/// refusal is noted in `denied` and the run reads without that account.
async fn assumed(
    app: &Account,
    settings: &Settings,
    arn: Option<&super::settings::RoleArn>,
    denied: &mut Vec<Denied>,
) -> Option<Account> {
    let arn = arn?;
    let external_id = settings.external_id.as_deref();
    match super::credentials::sts::assume(app, arn.as_str(), external_id, "sts-assume-role").await {
        Ok(credentials) => Some(app.other(arn.account().to_string(), credentials)),
        Err(err) => {
            denied.push(Denied {
                action: "sts:AssumeRole".into(),
                account: arn.account().to_string(),
                message: format!("cannot assume {}: {err}", arn.as_str()),
            });
            None
        }
    }
}

/// The reading, or none at all when a describe failed for another reason
/// than a refusal: a world with holes nobody can see (an answer that was
/// not AWS's, a call that never came back) would turn into false findings
/// ("no interface for the source"), so nothing is judged from it. A
/// refusal is different: it is named, and the explanation says it is partial.
fn finish(part: Part) -> Reading {
    if !part.failures.is_empty() {
        return Reading {
            calls: part.calls,
            ..Reading::skipped(format!(
                "the AWS describes could not be read: {}",
                part.failures.join("; ")
            ))
        };
    }
    Reading {
        world: part.world,
        calls: part.calls,
        skipped: None,
    }
}
