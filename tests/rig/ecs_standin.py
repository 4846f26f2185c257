#!/usr/bin/env python3
"""A stand-in for ECS and CloudWatch Logs that speaks their JSON 1.1 APIs
(as the gate calls them) and REALLY runs each task's command: in the
network namespace its subnet maps to, with the task definition's
environment and secrets, every line of stdout and of stderr turned into
one log event of the awslogs stream PREFIX/CONTAINER/TASK-ID, interleaved
as they come, as the awslogs driver does. moto's ECS does not run tasks,
so this is the ECS the gate tests talk to. Loopback only.

    ecs_standin.py PORT CONFIG.json

CONFIG: {"binary": ..., "region": ..., "account": ...,
         "subnets": {"subnet-…": {"az": "eu-west-1a", "namespace": "ns" | null,
                                   "env": {"NAME": "value"}}},
         "services": {"cluster/name": {"taskDefinition": ..., "subnets": [...],
                                        "securityGroups": [...]}},
         "secrets": {"arn:…": "value"},
         "fail_start": {"subnet-…": "ResourceInitializationError: …"},
         "deny": ["RunTask"], "page_size": 3, "latency_ms": 0}

GET /_state answers every task's status and every StopTask asked (for the
tests); POST /_register registers a task definition file's JSON as-is.
"""
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

PORT = int(sys.argv[1])
CONFIG = json.load(open(sys.argv[2]))
ACCOUNT = CONFIG.get("account", "123456789012")
REGION = CONFIG.get("region", "eu-west-1")
LOCK = threading.Lock()
DEFINITIONS = {}   # family -> [definition, ...] (revision = index + 1)
TASKS = {}         # arn -> task dict (ECS's shape) plus private keys
LOGS = {}          # (group, stream) -> [event, ...]
STOPS = []         # the arns StopTask was asked for
CALLS = {}         # action -> how many times it was called


class Refused(Exception):
    def __init__(self, kind, message, status=400):
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


def now_ms():
    return int(time.time() * 1000)


def register(definition):
    family = definition["family"]
    with LOCK:
        revisions = DEFINITIONS.setdefault(family, [])
        stored = dict(definition)
        stored["revision"] = len(revisions) + 1
        stored["taskDefinitionArn"] = (
            f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{stored['revision']}")
        stored["status"] = "ACTIVE"
        revisions.append(stored)
    return stored


def definition(name):
    name = name.rsplit("task-definition/", 1)[-1]
    family, _, revision = name.partition(":")
    with LOCK:
        revisions = DEFINITIONS.get(family)
        if not revisions:
            raise Refused("ClientException", "Unable to describe task definition.")
        return revisions[int(revision) - 1] if revision else revisions[-1]


def describe_task_definition(body):
    return {"taskDefinition": definition(body["taskDefinition"])}


def describe_services(body):
    cluster = body.get("cluster", "default")
    found, failures = [], []
    for name in body.get("services", []):
        service = CONFIG.get("services", {}).get(f"{cluster}/{name}")
        if service is None:
            failures.append({"arn": name, "reason": "MISSING"})
            continue
        found.append({
            "serviceName": name,
            "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}",
            "taskDefinition": definition(service["taskDefinition"])["taskDefinitionArn"],
            "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": service["subnets"],
                "securityGroups": service["securityGroups"],
                "assignPublicIp": "DISABLED"}},
        })
    return {"services": found, "failures": failures}


def run_task(body):
    if "RunTask" in CONFIG.get("deny", []):
        raise Refused("AccessDeniedException",
                      f"User: arn:aws:sts::{ACCOUNT}:assumed-role/ci-deploy/gate is not authorized "
                      f"to perform: ecs:RunTask on resource: {body.get('taskDefinition')} because no "
                      "identity-based policy allows the ecs:RunTask action")
    td = definition(body["taskDefinition"])
    subnets = body["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
    subnet = subnets[0]
    place = CONFIG["subnets"].get(subnet)
    if place is None:
        return {"tasks": [], "failures": [{"arn": subnet, "reason": "subnet not found",
                                           "detail": f"The subnet ID '{subnet}' does not exist"}]}
    cluster = body.get("cluster", "default")
    task_id = uuid.uuid4().hex
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{task_id}"
    overrides = {o["name"]: o for o in body.get("overrides", {}).get("containerOverrides", [])}
    container = next(c for c in td["containerDefinitions"] if c.get("essential", True))
    name = container["name"]
    task = {
        "taskArn": arn, "clusterArn": cluster, "taskDefinitionArn": td["taskDefinitionArn"],
        "lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "launchType": "FARGATE",
        "availabilityZone": place["az"], "startedBy": body.get("startedBy", ""),
        "attachments": [{"type": "ElasticNetworkInterface", "status": "ATTACHED", "details": [
            {"name": "subnetId", "value": subnet}]}],
        "containers": [{"name": name, "lastStatus": "PENDING"}],
    }
    with LOCK:
        TASKS[arn] = task
    failure = CONFIG.get("fail_start", {}).get(subnet)
    if failure:
        stop(arn, "TaskFailedToStart", failure)
        return {"tasks": [public(task)], "failures": []}
    command = overrides.get(name, {}).get("command") or container.get("command") or []
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    environment.update({e["name"]: e["value"] for e in container.get("environment", [])})
    for secret in container.get("secrets", []):
        environment[secret["name"]] = CONFIG.get("secrets", {}).get(secret["valueFrom"], "")
    for e in overrides.get(name, {}).get("environment", []):
        environment[e["name"]] = e["value"]
    # What this subnet's network gives a task that the host's cannot
    # (the demo: a subnet whose path to HAProxy leads nowhere).
    environment.update(place.get("env", {}))
    options = container.get("logConfiguration", {}).get("options", {})
    group = options.get("awslogs-group", "")
    prefix = options.get("awslogs-stream-prefix", "")
    stream = f"{prefix}/{name}/{task_id}" if prefix else f"{name}/{task_id}"
    argv = [CONFIG["binary"]] + list(command)
    if place.get("namespace"):
        argv = ["ip", "netns", "exec", place["namespace"]] + argv
    process = subprocess.Popen(argv, env=environment, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    with LOCK:
        LOGS.setdefault((group, stream), [])
        task["_process"] = process
        task["startedAt"] = time.time()
        task["lastStatus"] = "RUNNING"
        task["containers"][0]["lastStatus"] = "RUNNING"
    readers = [threading.Thread(target=pump, args=(pipe, group, stream), daemon=True)
               for pipe in (process.stdout, process.stderr)]
    for reader in readers:
        reader.start()
    threading.Thread(target=reap, args=(arn, process, readers), daemon=True).start()
    return {"tasks": [public(task)], "failures": []}


def pump(pipe, group, stream):
    """Each line one event, as awslogs makes them."""
    for raw in iter(pipe.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        with LOCK:
            LOGS[(group, stream)].append({"timestamp": now_ms(), "message": line,
                                          "ingestionTime": now_ms()})


def reap(arn, process, readers):
    code = process.wait()
    for reader in readers:
        reader.join(timeout=5)
    with LOCK:
        task = TASKS[arn]
        task["containers"][0]["exitCode"] = code
        if task["lastStatus"] != "STOPPED":
            task["stopCode"] = task.get("_stop_code", "EssentialContainerExited")
            task["stoppedReason"] = task.get("_stopped_reason", "Essential container in task exited")
        task["lastStatus"] = task["desiredStatus"] = "STOPPED"
        task["containers"][0]["lastStatus"] = "STOPPED"
        task["stoppedAt"] = time.time()


def stop(arn, code, reason):
    with LOCK:
        task = TASKS[arn]
        task["_stop_code"], task["_stopped_reason"] = code, reason
        task["desiredStatus"] = "STOPPED"
        process = task.get("_process")
        if process is None:
            task.update(lastStatus="STOPPED", stopCode=code, stoppedReason=reason)
            task["containers"][0]["lastStatus"] = "STOPPED"
    if process is not None and process.poll() is None:
        # ECS's stop: SIGTERM, SIGKILL after the container's stopTimeout.
        os.killpg(process.pid, signal.SIGTERM)
        threading.Timer(10, lambda: process.poll() is None and os.killpg(process.pid, signal.SIGKILL)).start()


def stop_task(body):
    arn = body["task"]
    with LOCK:
        STOPS.append(arn)
        known = arn in TASKS
    if not known:
        raise Refused("InvalidParameterException", "The referenced task was not found.")
    stop(arn, "UserInitiated", body.get("reason", "Task stopped by user"))
    return {"task": public(TASKS[arn])}


def public(task):
    return {k: v for k, v in task.items() if not k.startswith("_")}


def describe_tasks(body):
    with LOCK:
        found = [public(TASKS[a]) for a in body.get("tasks", []) if a in TASKS]
        missing = [{"arn": a, "reason": "MISSING"} for a in body.get("tasks", []) if a not in TASKS]
    return {"tasks": found, "failures": missing}


def get_log_events(body):
    key = (body["logGroupName"], body["logStreamName"])
    with LOCK:
        if key not in LOGS:
            raise Refused("ResourceNotFoundException", "The specified log stream does not exist.")
        events = list(LOGS[key])
    token = body.get("nextToken")
    start = int(token.split("/")[1]) if token else 0
    page = events[start:start + int(CONFIG.get("page_size", 3))]
    # At the end, the token asked with comes back, as CloudWatch Logs does.
    following = f"f/{start + len(page):056d}"
    return {"events": page, "nextForwardToken": following if page else (token or following),
            "nextBackwardToken": f"b/{start:056d}"}


ACTIONS = {
    "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition": describe_task_definition,
    "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition": lambda b: {"taskDefinition": register(b)},
    "AmazonEC2ContainerServiceV20141113.DescribeServices": describe_services,
    "AmazonEC2ContainerServiceV20141113.RunTask": run_task,
    "AmazonEC2ContainerServiceV20141113.DescribeTasks": describe_tasks,
    "AmazonEC2ContainerServiceV20141113.StopTask": stop_task,
    "Logs_20140328.GetLogEvents": get_log_events,
}


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_state":
            with LOCK:
                state = {"tasks": [public(t) for t in TASKS.values()], "stops": list(STOPS),
                         "calls": dict(CALLS)}
            return self.answer(200, state)
        self.answer(404, {"__type": "UnknownOperationException", "message": self.path})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/_register":
            return self.answer(200, {"taskDefinition": register(body)})
        if "AWS4-HMAC-SHA256" not in self.headers.get("Authorization", ""):
            return self.answer(400, {"__type": "MissingAuthenticationTokenException",
                                     "message": "Missing Authentication Token"})
        # A region's answer time, for the benchmarks ("latency_ms").
        time.sleep(CONFIG.get("latency_ms", 0) / 1000)
        target = self.headers.get("X-Amz-Target", "")
        with LOCK:
            CALLS[target.rsplit(".", 1)[-1]] = CALLS.get(target.rsplit(".", 1)[-1], 0) + 1
        action = ACTIONS.get(target)
        if action is None:
            return self.answer(400, {"__type": "UnknownOperationException",
                                     "message": self.headers.get("X-Amz-Target", "")})
        try:
            self.answer(200, action(body))
        except Refused as refused:
            self.answer(refused.status, {"__type": refused.kind, "message": refused.message})

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # The gate calls for every subnet at once: a backlog of 5 (the
    # default) drops SYNs, and their retries would be timed as the gate's.
    request_queue_size = 256
    daemon_threads = True


SERVER = Server(("127.0.0.1", PORT), Handler)
print(f"listening on 127.0.0.1:{PORT}", flush=True)
SERVER.serve_forever()
