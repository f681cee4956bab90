"""STAND-IN for GitLab's REST API (v4), runner endpoints only. GitLab cannot run here.

Held to GitLab's documented behaviour (docs.gitlab.com/api/users/#create-a-runner-linked-to-a-user,
docs.gitlab.com/api/runners/): endpoints, field names, status codes and error bodies:
  POST   /user/runners                       201 {id, token: glrt-..., token_expires_at}; scope create_runner
  GET    /runners/all?type=                   admin only (403 otherwise)
  GET    /groups/:id/runners?type=            Owner of the group
  GET    /projects/:id/runners?type=          Maintainer of the project
  GET    /runners/:id                         details (tag_list, run_untagged, locked, access_level, ...)
  PUT    /runners/:id                         update
  POST   /runners/:id/reset_authentication_token   201 {token, token_expires_at}
  POST   /runners/verify {token}              200 | 403 (runner authentication, no access token)
  DELETE /runners/:id                         204
  POST   /runners {token: registration token} 201 | 403 invalid token | 410 registration disallowed
  GET    /groups/:id_or_path, /projects/:id_or_path    404 {"message": "404 Group Not Found"} ...
         a project also shows `container_registry_image_prefix` (<registry host>/<path, lowercase>: the
         $CI_REGISTRY_IMAGE its pipelines push to; docs.gitlab.com/api/projects, "Get a single
         project", added by gitlab-org/gitlab merge request 54090); left out here when the seed names no
         "registry" (an instance without a container registry)
Access tokens: PRIVATE-TOKEN header; unknown -> 401 {"message": "401 Unauthorized"}; a token without the
scope -> 403 {"error": "insufficient_scope", ...}; a user without the role -> 403 {"message": "403 Forbidden"}.

Scopes, as GitLab's source has them (no scope implies another; `scopes_for` below):
  every endpoint accepts `api`, GET/HEAD ones also `read_api` (lib/api/api.rb: allow_access_with_scope
  :api, and :read_api if request.get? || request.head?; checked in lib/api/api_guard.rb,
  scopes_registered_for_endpoint, and lib/api/scope.rb); /runners/:id... also `manage_runner`
  (lib/api/ci/runners.rb: its condition matches only paths /api/v4/runners/<id>...); POST /user/runners
  also `create_runner` (lib/api/user_runners.rb). So a token with only create_runner and manage_runner
  cannot look up a project or group or list their runners: those need read_api (or api). The 403 body's
  `scope` lists the endpoint's scopes (Rack::OAuth2 insufficient_scope, as GitLab's docs show it).
Side effects held to GitLab's source: POST /runners/verify ensures a runner manager keyed by
`system_id`, "<legacy>" when absent (app/models/ci/runner.rb ensure_manager, lib/api/ci/runner.rb), and
records a contact; GET /projects/:id/runners also lists runners owned by other projects and enabled on
this one (Ci::Runner.owned_or_instance_wide, belonging_to_project via ci_runner_projects); GET
/runners/:id lists the owner project first in `projects` (lib/api/entities/ci/runner_details.rb).

Run: python -m tests.standins.gitlab.server --port 0 --state FILE.json  (prints the URL on stdout;
FILE.json holds users, tokens, groups, projects, optionally the registry host and runners (owned by another project and
enabled on some: {"runner_type", "scope_id", "description", "enabled_projects"}); runners are kept in
memory and exposed at GET /_standin/runners for tests, with the managers verify made).
"""
import argparse
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

RUNNER_FIELDS = ("description", "paused", "tag_list", "run_untagged", "locked", "access_level", "maximum_timeout")
ROLE = {"guest": 10, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}


class State:
    def __init__(self, seed):
        self.lock = threading.Lock()
        self.users = seed.get("users", {})            # name -> {admin: bool}
        self.tokens = seed.get("tokens", {})          # token -> {user, scopes}
        self.groups = seed.get("groups", {})          # id -> {path, members: {user: role}}
        self.projects = seed.get("projects", {})      # id -> {path, group, members: {user: role}}
        self.registration_tokens = seed.get("registration_tokens", {})  # token -> {type, scope_id}
        self.registration_enabled = seed.get("registration_enabled", False)
        self.registry = seed.get("registry", "")       # the instance's container registry host, if any
        self.runners = {}
        self.next_id = 100
        self.requests = []
        for r in seed.get("runners", []):
            made = self.new_runner(r["runner_type"], r.get("scope_id"), r, None)
            made["enabled_projects"] = list(r.get("enabled_projects", []))

    def find(self, table, ref):
        ref = unquote(ref)
        if ref in table:
            return ref, table[ref]
        for key, obj in table.items():
            if obj["path"] == ref:
                return key, obj
        return None, None

    def role(self, user, kind, key):
        if self.users.get(user, {}).get("admin"):
            return ROLE["owner"]
        if kind == "group":
            return ROLE.get(self.groups[key].get("members", {}).get(user, ""), 0)
        proj = self.projects[key]
        inherited = ROLE.get(self.groups.get(proj.get("group"), {}).get("members", {}).get(user, ""), 0)
        return max(inherited, ROLE.get(proj.get("members", {}).get(user, ""), 0))

    def new_runner(self, rtype, scope_id, attrs, owner):
        self.next_id += 1
        rid = self.next_id
        token = "glrt-" + secrets.token_urlsafe(15)
        self.runners[rid] = {
            "id": rid, "runner_type": rtype, "scope_id": scope_id, "token": token, "owner": owner,
            "description": attrs.get("description", ""), "paused": bool(attrs.get("paused", False)),
            "tag_list": list(attrs.get("tag_list") or []), "run_untagged": bool(attrs.get("run_untagged", True)),
            "locked": bool(attrs.get("locked", False)), "access_level": attrs.get("access_level", "not_protected"),
            "maximum_timeout": attrs.get("maximum_timeout"), "enabled_projects": [], "managers": {},
        }
        return self.runners[rid]


def brief(r):
    return {"id": r["id"], "description": r["description"], "ip_address": None, "active": not r["paused"],
            "paused": r["paused"], "is_shared": r["runner_type"] == "instance_type", "runner_type": r["runner_type"],
            "name": None, "online": None, "status": "never_contacted"}


def details(r, state):
    out = brief(r)
    out.update({k: r[k] for k in RUNNER_FIELDS})
    out["projects"] = ([{"id": int(key), "path_with_namespace": state.projects[key]["path"]}
                        for key in [r["scope_id"]] + r["enabled_projects"]]
                       if r["runner_type"] == "project_type" else [])
    out["groups"] = ([{"id": int(r["scope_id"]), "web_url": "", "name": state.groups[r["scope_id"]]["path"]}]
                     if r["runner_type"] == "group_type" else [])
    return out


def scopes_for(method, path):
    """The access-token scopes GitLab registers for an endpoint (see the module docstring)."""
    scopes = ["api"]
    if method in ("GET", "HEAD"):
        scopes.append("read_api")
    if re.fullmatch(r"/runners/\d+(/.*)?", path):
        scopes.append("manage_runner")
    if method == "POST" and path == "/user/runners":
        scopes.append("create_runner")
    return scopes


class Handler(BaseHTTPRequestHandler):
    server_version = "gitlab-standin/1"

    def log_message(self, *args):
        pass

    # -- helpers
    def send(self, code, body=None):
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if not n:
            return {}
        raw = self.rfile.read(n)
        if "json" in (self.headers.get("Content-Type") or ""):
            return json.loads(raw)
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def auth(self):
        """The token's user, or None after answering 401/403 like GitLab."""
        token = self.headers.get("PRIVATE-TOKEN") or (self.headers.get("Authorization") or "").replace("Bearer ", "")
        info = self.server.state.tokens.get(token)
        if not info:
            self.send(401, {"message": "401 Unauthorized"})
            return None
        scopes = scopes_for(self.command, self.api_path)
        if not set(scopes) & set(info["scopes"]):
            self.send(403, {"error": "insufficient_scope",
                            "error_description": "The request requires higher privileges than provided by the access token.",
                            "scope": " ".join(scopes)})
            return None
        return info["user"]

    def handle_any(self, method):
        st = self.server.state
        url = urlparse(self.path)
        path = url.path
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        data = self.body() if method in ("POST", "PUT") else {}
        with st.lock:
            st.requests.append({"method": method, "path": path, "query": q})
            if path == "/_standin/runners":
                return self.send(200, list(st.runners.values()))
            if not path.startswith("/api/v4/"):
                return self.send(404, {"message": "404 Not Found"})
            self.api_path = path[len("/api/v4"):]
            return self.route(method, self.api_path, q, data)

    def route(self, method, path, q, data):
        st = self.server.state
        m = re.fullmatch(r"/(groups|projects)/([^/]+)(/runners)?", path)
        if m and method == "GET":
            kind = "group" if m.group(1) == "groups" else "project"
            table = st.groups if kind == "group" else st.projects
            user = self.auth()
            if user is None:
                return
            key, obj = st.find(table, m.group(2))
            if obj is None or st.role(user, kind, key) < ROLE["guest"]:
                return self.send(404, {"message": "404 %s Not Found" % kind.capitalize()})
            if not m.group(3):
                body = {"id": int(key), "path_with_namespace" if kind == "project" else "full_path": obj["path"]}
                if kind == "project" and st.registry:
                    body["container_registry_image_prefix"] = "%s/%s" % (st.registry, obj["path"].lower())
                return self.send(200, body)
            need = ROLE["owner"] if kind == "group" else ROLE["maintainer"]
            if st.role(user, kind, key) < need:
                return self.send(403, {"message": "403 Forbidden"})
            rtype = kind + "_type"
            want = q.get("type")
            out = [brief(r) for r in st.runners.values()
                   if r["runner_type"] == rtype and (r["scope_id"] == key or key in r["enabled_projects"])
                   and (not want or want == rtype)]
            return self.send(200, self.page(out, q))
        if path == "/runners/all" and method == "GET":
            user = self.auth()
            if user is None:
                return
            if not st.users.get(user, {}).get("admin"):
                return self.send(403, {"message": "403 Forbidden"})
            want = q.get("type")
            return self.send(200, self.page([brief(r) for r in st.runners.values()
                                             if not want or r["runner_type"] == want], q))
        if path == "/user/runners" and method == "POST":
            return self.create(data)
        if path == "/runners/verify" and method == "POST":
            for r in st.runners.values():
                if data.get("token") and r["token"] == data.get("token"):
                    manager = r["managers"].setdefault(data.get("system_id") or "<legacy>", {"contacts": 0})
                    manager["contacts"] += 1
                    return self.send(200, {"id": r["id"], "token": r["token"], "token_expires_at": None})
            return self.send(403, {"message": "403 Forbidden"})
        if path == "/runners" and method == "POST":
            return self.register_legacy(data)
        m = re.fullmatch(r"/runners/(\d+)(/reset_authentication_token)?", path)
        if m:
            user = self.auth()
            if user is None:
                return
            r = st.runners.get(int(m.group(1)))
            if r is None or not self.may_manage(user, r):
                return self.send(404 if r is None else 403, {"message": "404 Runner Not Found"} if r is None
                                 else {"message": "403 Forbidden"})
            if m.group(2) and method == "POST":
                r["token"] = "glrt-" + secrets.token_urlsafe(15)
                return self.send(201, {"token": r["token"], "token_expires_at": None})
            if method == "GET":
                return self.send(200, details(r, st))
            if method == "PUT":
                for k in RUNNER_FIELDS:
                    if k in data:
                        r[k] = data[k]
                return self.send(200, details(r, st))
            if method == "DELETE":
                del st.runners[r["id"]]
                return self.send(204)
        return self.send(404, {"message": "404 Not Found"})

    @staticmethod
    def page(items, q):
        per, page = int(q.get("per_page", 20)), int(q.get("page", 1))
        return items[(page - 1) * per:page * per]

    def may_manage(self, user, r):
        st = self.server.state
        if st.users.get(user, {}).get("admin"):
            return True
        if r["runner_type"] == "group_type":
            return st.role(user, "group", r["scope_id"]) >= ROLE["owner"]
        if r["runner_type"] == "project_type":
            return st.role(user, "project", r["scope_id"]) >= ROLE["maintainer"]
        return False

    def create(self, data):
        st = self.server.state
        user = self.auth()
        if user is None:
            return
        rtype = data.get("runner_type")
        if rtype not in ("instance_type", "group_type", "project_type"):
            return self.send(400, {"error": "runner_type is missing, runner_type does not have a valid value"})
        scope_id = None
        if rtype == "group_type":
            if "group_id" not in data:
                return self.send(400, {"message": "400 Bad request - group_id is missing"})
            scope_id = str(data["group_id"])
            if scope_id not in st.groups:
                return self.send(403, {"message": "403 Forbidden"})
            if st.role(user, "group", scope_id) < ROLE["owner"]:
                return self.send(403, {"message": "403 Forbidden"})
        elif rtype == "project_type":
            if "project_id" not in data:
                return self.send(400, {"message": "400 Bad request - project_id is missing"})
            scope_id = str(data["project_id"])
            if scope_id not in st.projects or st.role(user, "project", scope_id) < ROLE["maintainer"]:
                return self.send(403, {"message": "403 Forbidden"})
        elif not st.users.get(user, {}).get("admin"):
            return self.send(403, {"message": "403 Forbidden"})
        tags = data.get("tag_list") or []
        if isinstance(tags, str):
            tags = [t for t in tags.split(",") if t]
        r = st.new_runner(rtype, scope_id, dict(data, tag_list=tags), user)
        return self.send(201, {"id": r["id"], "token": r["token"], "token_expires_at": None})

    def register_legacy(self, data):
        st = self.server.state
        info = st.registration_tokens.get(data.get("token") or "")
        if not info:
            return self.send(403, {"message": "403 Forbidden - invalid token supplied"})
        if not st.registration_enabled:
            return self.send(410, {"message": "410 Gone - runner registration disallowed"})
        r = st.new_runner(info["type"], info.get("scope_id"), data, None)
        return self.send(201, {"id": r["id"], "token": r["token"], "token_expires_at": None})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")


def serve(seed, port=0):
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.state = State(seed)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    return httpd, "http://127.0.0.1:%d" % httpd.server_address[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state", required=True)
    ap.add_argument("--url-file")
    args = ap.parse_args()
    with open(args.state) as f:
        httpd, url = serve(json.load(f), args.port)
    if args.url_file:
        with open(args.url_file, "w") as f:
            f.write(url)
    print(url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
