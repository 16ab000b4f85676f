"""The Grafana stand-in keeps the contract it documents (so the sink tests prove something)."""
import pytest
import requests

from tests.grafana_standin import (  # noqa: F401 (fixture)
    ADMIN_USER,
    EDITOR_TOKEN,
    VIEWER_TOKEN,
    grafana,
)

EDITOR = {"Authorization": f"Bearer {EDITOR_TOKEN}"}


def post(server, body, headers=EDITOR):
    return requests.post(server.url + "/api/annotations", json=body, headers=headers, timeout=5)


def search(server, headers=EDITOR, **params):
    return requests.get(server.url + "/api/annotations", params=params, headers=headers, timeout=5)


def test_every_post_inserts_and_answers_like_grafana(grafana):
    body = {"time": 1000, "timeEnd": 2000, "text": "same", "tags": ["a"]}
    first, second = post(grafana, body), post(grafana, body)
    assert first.json() == {"message": "Annotation added", "id": 1}
    assert second.json()["id"] == 2 and len(grafana.annotations) == 2


@pytest.mark.parametrize("body, words", [
    ({"time": 1000, "text": ""}, "Failed to save annotation"),
    ({"time": "1000", "text": "x"}, "is not of type 'integer'"),
    ({"time": 1000, "text": "x", "tags": "a"}, "is not of type 'array'"),
    ({"time": 1000, "text": "x", "timeend": 5}, "Additional properties"),
    ({"time": 1000, "text": "x", "tags": ["t" * 300, "u" * 300]}, "exceeds the maximum allowed (500)"),
])
def test_bad_bodies_are_400_with_grafana_message(grafana, body, words):
    answer = post(grafana, body)
    assert answer.status_code == 400 and words in answer.json()["message"]
    assert not grafana.annotations and grafana.violations


def test_auth_is_enforced(grafana):
    body = {"time": 1000, "text": "x"}
    assert post(grafana, body, headers={}).status_code == 401
    assert post(grafana, body, headers={"Authorization": "Bearer nope"}).json() == {"message": "Invalid API key"}
    viewer = post(grafana, body, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
    assert viewer.status_code == 403 and "annotations:create" in viewer.json()["message"]
    assert search(grafana, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}).status_code == 200
    basic = requests.post(grafana.url + "/api/annotations", json=body, auth=ADMIN_USER,
                          headers={"X-Grafana-Org-Id": "2"}, timeout=5)
    assert basic.status_code == 200 and grafana.annotations[basic.json()["id"]].org_id == 2
    other_org = requests.post(grafana.url + "/api/annotations", json=body, auth=ADMIN_USER,
                              headers={"X-Grafana-Org-Id": "9"}, timeout=5)
    assert other_org.status_code == 401
    assert not search(grafana).json()  # the editor token's org 1 cannot see org 2


def test_points_regions_and_swapped_bounds(grafana):
    point = post(grafana, {"time": 5000, "text": "p"}).json()["id"]
    swapped = post(grafana, {"time": 9000, "timeEnd": 7000, "text": "r"}).json()["id"]
    assert (grafana.annotations[point].time, grafana.annotations[point].time_end) == (5000, 5000)
    assert (grafana.annotations[swapped].time, grafana.annotations[swapped].time_end) == (7000, 9000)


def test_search_filters_and_order_as_grafana(grafana):
    ids = {}
    for name, start, end, tags in [("early", 1000, 2000, ["x", "run-1"]), ("long", 1500, 9000, ["x", "run-1"]),
                                   ("late", 8000, 8500, ["x", "env:prod"]), ("other", 3000, 3000, ["y"])]:
        ids[name] = post(grafana, {"time": start, "timeEnd": end, "text": name, "tags": tags}).json()["id"]

    def names(**params):
        answer = search(grafana, **params)
        assert answer.status_code == 200, answer.text
        return [item["text"] for item in answer.json()]

    assert names() == ["long", "late", "other", "early"]  # latest end first
    assert names(**{"from": 2500, "to": 3500}) == ["long", "other"]  # overlap, not containment
    assert names(**{"from": 0, "to": 3500}) == ["long", "late", "other", "early"]  # both > 0 or no range
    assert names(tags=["x", "run-1"]) == ["long", "early"]
    assert names(tags=["run-1", "y"], matchAny="true") == ["long", "other", "early"]
    assert names(tags=["env"]) == ["late"]  # a tag without value matches the key of key:value tags
    assert names(tags=["env:prod"]) == ["late"]
    assert names(limit=2) == ["long", "late"]
    assert names(type="alert") == []


@pytest.mark.parametrize("params, words", [
    ({"from": "yesterday"}, "not an integer"),
    ({"limit": ["1", "2"]}, "given 2 times"),
    ({"type": "other"}, "not in"),
    ({"matchAny": "yes"}, "true or false"),
    ({"tag": "x"}, "unknown query parameter"),
])
def test_bad_queries_are_400(grafana, params, words):
    answer = search(grafana, **params)
    assert answer.status_code == 400 and words in answer.json()["message"]


def test_patch_changes_only_given_fields_and_unknown_ids_are_404(grafana):
    annotation_id = post(grafana, {"time": 1000, "text": "before", "tags": ["a"]}).json()["id"]
    url = f"{grafana.url}/api/annotations/{annotation_id}"
    patched = requests.patch(url, json={"timeEnd": 4000}, headers=EDITOR, timeout=5)
    assert patched.json() == {"message": "Annotation patched"}
    stored = grafana.annotations[annotation_id]
    assert (stored.time, stored.time_end, stored.text, stored.tags) == (1000, 4000, "before", ["a"])
    missing = requests.patch(f"{grafana.url}/api/annotations/999", json={"text": "x"}, headers=EDITOR, timeout=5)
    assert missing.status_code == 404 and missing.json() == {"message": "Annotation not found"}
    assert requests.delete(url, headers=EDITOR, timeout=5).json() == {"message": "Annotation deleted"}
    assert requests.get(url, headers=EDITOR, timeout=5).status_code == 404


def test_failures_on_demand(grafana):
    grafana.fail(503, times=2)
    assert [search(grafana).status_code for _ in range(3)] == [503, 503, 200]
    grafana.reset(times=1)
    with pytest.raises(requests.ConnectionError):
        search(grafana)
    grafana.reset(times=1, after_store=True, method="POST")
    with pytest.raises(requests.ConnectionError):
        post(grafana, {"time": 1000, "text": "stored anyway"})
    assert [a.text for a in grafana.annotations.values()] == ["stored anyway"]
    grafana.slow(1.0)
    with pytest.raises(requests.Timeout):
        requests.get(grafana.url + "/api/annotations", headers=EDITOR, timeout=0.2)
    assert grafana.count("GET") == 5 and grafana.count("POST") == 1
