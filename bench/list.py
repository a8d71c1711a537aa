"""Server time and query count of the containers page with 1,000 and 10,000 mirrored
containers (SQLite in a temp data dir), sorted by name and filtered by a search.

Target: a median under 150 ms at 10,000 and the same number of queries at both sizes.
Prints a table, then one JSON object on its last line.

    python bench/list.py [--sizes 1000,10000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(data_dir: str) -> None:
    os.environ["BERTH_DATA_DIR"] = data_dir
    os.environ["BERTH_IN_MEMORY_CHANNELS"] = "1"
    os.environ["BERTH_ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(environment, count: int) -> None:
    from console.inventory.models import Container

    Container.objects.filter(environment=environment).delete()
    states = ["running", "exited", "created", "paused"]
    rows = [
        Container(environment=environment, container_id=f"{i:064x}", name=f"app-{i:05d}",
                  image=f"team/app{i % 40}:1.{i % 7}", state=states[i % 4], status="Up 3 hours",
                  labels={"team": f"t{i % 9}"}, search_text=f"app-{i:05d} team/app{i % 40}:1.{i % 7}")
        for i in range(count)
    ]
    Container.objects.bulk_create(rows, batch_size=2000)


def measure(client, url: str, repeat: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(ctx.captured_queries)
    return statistics.median(times), queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as data_dir:
        setup_django(data_dir)
        from django.contrib.auth import get_user_model
        from django.test import Client

        from console.core.models import Environment

        admin = get_user_model().objects.create_superuser("bench", "", "bench-password-1")
        environment = Environment.objects.get(name="local")
        client = Client()
        client.force_login(admin)
        urls = {"page 1 by name": "/containers/", "newest first, page 20": "/containers/?sort=-created&page=20",
                "search": "/containers/?q=app-0042", "state and label filter": "/containers/?state=running&label=team=t3"}
        results = {}
        for size in sizes:
            fill(environment, size)
            client.get("/containers/")  # warm caches
            results[size] = {name: measure(client, url, args.repeat) for name, url in urls.items()}
        print(f"{'view':28}" + "".join(f"{size:>12} ms {'queries':>8}" for size in sizes))
        for name in urls:
            print(f"{name:28}" + "".join(f"{results[s][name][0]:>15.1f} {results[s][name][1]:>8}" for s in sizes))
        largest = max(sizes)
        summary = {
            "sizes": sizes,
            "median_ms": {str(s): {n: round(results[s][n][0], 1) for n in urls} for s in sizes},
            "queries": {str(s): {n: results[s][n][1] for n in urls} for s in sizes},
            "target_ms": 150,
            "meets_target": all(results[largest][n][0] < 150 for n in urls),
            "same_queries_at_all_sizes": all(len({results[s][n][1] for s in sizes}) == 1 for n in urls),
        }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
