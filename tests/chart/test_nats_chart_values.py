"""The chart's values for the official NATS chart and its cluster settings.

The release writes the NATS chart's values (a ConfigMap): a JetStream cluster
that mounts the release's accounts Secret and includes it, so the users exist
without a hand edit. The include is checked on a real nats-server laid out as
the NATS chart lays out its pod (its config in /etc/nats-config, the Secret's
item mounted beside it), with the users' URLs from the rendered Secrets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bus.connect import connect
from bus.jetstream.streams import ensure_streams
from bus.settings import BusSettings
from crews.local.servers import ServerProcess, free_port, nats_server_binary
from tests.chart.render import Obj, example_values, of_kind, render
from tests.chart.test_chart import env_of

NATS_CONFIG_DIR = "/etc/nats-config"  # where the NATS chart mounts its config (nats.conf)


def nats_chart_values(objects: list[Obj]) -> dict[str, Any]:
    [config_map] = [
        o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-nats-values")
    ]
    values: dict[str, Any] = yaml.safe_load(config_map["data"]["values.yaml"])
    return values


def accounts_secret(objects: list[Obj]) -> Obj:
    [secret] = [o for o in of_kind(objects, "Secret") if "accounts.conf" in o.get("stringData", {})]
    return secret


def test_the_nats_chart_values_run_a_jetstream_cluster_with_the_releases_accounts() -> None:
    objects = render({**example_values(), "nats": {"auth": {"seed": "s"}, "chartValues": {"replicas": 3}}})
    values = nats_chart_values(objects)

    config = values["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    assert config["jetstream"]["enabled"] and config["monitor"]["enabled"]
    [volume] = [p["value"] for p in values["podTemplate"]["patch"] if p["path"] == "/spec/volumes/-"]
    assert volume["secret"]["secretName"] == accounts_secret(objects)["metadata"]["name"]
    assert volume["secret"]["items"] == [{"key": "accounts.conf", "path": "accounts.conf"}]  # not the seed
    [mount] = [p["value"] for p in values["container"]["patch"] if p["path"] == "/volumeMounts/-"]
    assert mount["name"] == volume["name"]
    included = Path(NATS_CONFIG_DIR, config["merge"]["$include"])
    assert included == Path(mount["mountPath"], "accounts.conf")


def test_one_server_is_no_cluster() -> None:
    values = nats_chart_values(render({"nats": {"auth": {"seed": "s"}, "chartValues": {"replicas": 1}}}))
    assert values["config"]["cluster"]["enabled"] is False


async def test_a_nats_server_laid_out_as_the_nats_chart_knows_the_users(tmp_path: Path) -> None:
    objects = render({**example_values(), "nats": {"auth": {"seed": "t"}}})
    values = nats_chart_values(objects)
    config_dir = tmp_path / "nats-config"  # stands for /etc/nats-config
    [mount] = [p["value"] for p in values["container"]["patch"] if p["path"] == "/volumeMounts/-"]
    mounted = config_dir / Path(mount["mountPath"]).relative_to(NATS_CONFIG_DIR)
    mounted.mkdir(parents=True)
    (mounted / "accounts.conf").write_text(accounts_secret(objects)["stringData"]["accounts.conf"])
    port = free_port()
    (config_dir / "nats.conf").write_text(
        f'listen: "127.0.0.1:{port}"\njetstream {{store_dir: "{tmp_path / "js"}"}}\n'
        f'include "{values["config"]["merge"]["$include"]}"\n'  # the NATS chart renders $include so
    )
    server = ServerProcess(
        "nats-server", [nats_server_binary(), "-c", str(config_dir / "nats.conf")], "Server is ready", port
    )
    server.start()
    try:
        coordinator = next(
            s["stringData"]["url"]
            for s in of_kind(objects, "Secret")
            if s["metadata"].get("annotations", {}).get("crews.dev/nats-user") == "coordinator"
        )
        parts = urlsplit(coordinator)
        settings = BusSettings(nats_url=f"nats://{parts.username}:{parts.password}@127.0.0.1:{port}")
        nc = await connect(settings, "coordinator")  # its own inbox prefix, as the coordinator's
        try:
            await ensure_streams(nc.jetstream(), BusSettings())  # the account has JetStream
        finally:
            await nc.close()
    finally:
        server.kill()


def test_cluster_settings_reach_every_process() -> None:
    values = {
        **example_values(),
        "redis": {"url": "redis+cluster://valkey:6379", "cluster": True},
        "settings": {"streamReplicas": 3},
    }
    deployments = of_kind(render(values), "Deployment")
    crews_processes = [
        d for d in deployments if not any(k in d["metadata"]["name"] for k in ("vllm", "-mcp-"))
    ]
    assert crews_processes
    for deployment in crews_processes:
        env = env_of(deployment)
        assert (env["CREWS_STREAM_REPLICAS"], env["CREWS_REDIS_CLUSTER"]) == ("3", "true")
