"""What the operations API tests and the dashboard page tests both need: calling the API with
a bearer token and reading its answers."""

from __future__ import annotations

API = "/api/v1"
PROBLEM = "application/problem+json"


def get(client, path, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(f"{API}{path}", headers=headers)


def post(client, path, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(f"{API}{path}", headers=headers)


def ok(response) -> dict:
    """The JSON body of a 200 answer, which the operations API never lets be cached."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "private, no-store"
    return response.get_json()


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["code"] == code and body["detail"]
    return body
