"""Post the comment on a pull request through GitHub's REST API, updating it in place on each push.

The bot's comment starts with a hidden marker, but anyone can write that marker: the comment to
update is one that starts with it AND was written by the token's own identity. `GET /user` names
that identity for a personal token; an Actions or App installation token gets 403 there, and then
it is the app's bot account (`github-actions[bot]` unless LABTAX_BOT_LOGIN names another app's),
whose login no person can register and whose type GitHub sets to "Bot". Any other comment with the
marker is left alone and a new one is posted. Only the standard library (urllib) is used.

The token is sent only to the origin of GITHUB_API_URL: pagination links and redirects to another
origin are refused (urllib would resend the Authorization header), and it is never part of any
message: every error text is passed through `_redact` before it is shown.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from labtax import __version__
from labtax.comment import GITHUB_COMMENT_LIMIT, MARKER
from labtax.errors import LabtaxError

DEFAULT_API_URL = "https://api.github.com"
ACTIONS_BOT = "github-actions[bot]"
TIMEOUT_S = 30
MAX_PAGES = 100
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class GitHubError(LabtaxError):
    """GitHub refused or could not be reached; the message says what to check."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status GitHub answered, when it answered


@dataclass(frozen=True)
class Identity:
    """Who the token writes as: the author whose marker comment is ours to update."""

    login: str
    bot: bool  # an App installation token (Actions' GITHUB_TOKEN): the comment's user.type is "Bot"

    def wrote(self, comment: dict) -> bool:
        user = comment.get("user")
        if not isinstance(user, dict) or str(user.get("login", "")).lower() != self.login.lower():
            return False
        return user.get("type") == "Bot" if self.bot else True


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    comment_id: int
    url: str


def post_comment(
    body: str, *, repo: str, pr: int, token: str | None, api_url: str | None = None, bot_login: str | None = None
) -> Posted:
    """Create the bot's comment on `repo`#`pr`, or update the one a previous run of the same identity left.

    `bot_login` names the App's bot account when the token is an installation token of an App other
    than GitHub Actions (default: github-actions[bot]); a personal token's login comes from GET /user.
    """
    if not token:
        raise GitHubError(
            "GITHUB_TOKEN is not set: export a token that may comment on the pull request "
            "(in GitHub Actions: `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` and "
            "`permissions: pull-requests: write`)"
        )
    if not _REPO.match(repo or ""):
        raise GitHubError(f"--repo must be OWNER/NAME, got {repo!r}")
    if not isinstance(pr, int) or pr <= 0:
        raise GitHubError(f"--pr must be a pull-request number, got {pr!r}")
    if not body.startswith(MARKER):
        body = f"{MARKER}\n{body}"
    if len(body.encode("utf-8")) > GITHUB_COMMENT_LIMIT:
        raise GitHubError(
            f"comment is longer than GitHub's {GITHUB_COMMENT_LIMIT:,}-character limit; render it with `labtax comment` (which cuts to fit)"
        )
    client = _Client(_check_api_url(api_url or DEFAULT_API_URL), token)
    owner, name = repo.split("/")
    base = f"/repos/{urllib.parse.quote(owner)}/{urllib.parse.quote(name)}/issues"
    identity = whoami(client, bot_login)
    existing = find_bot_comment(client, f"{base}/{pr}/comments", identity)
    if existing is not None:
        data = client.request("PATCH", f"{base}/comments/{existing['id']}", {"body": body})
        return Posted("updated", int(data.get("id", existing["id"])), str(data.get("html_url", "")))
    data = client.request("POST", f"{base}/{pr}/comments", {"body": body})
    return Posted("created", int(data.get("id", 0)), str(data.get("html_url", "")))


def whoami(client: _Client, bot_login: str | None = None) -> Identity:
    """The token's identity: GET /user for a personal token; an App's bot when GitHub answers 403."""
    try:
        user = client.request("GET", "/user", None)
    except GitHubError as exc:
        if exc.status != 403:  # 401 (bad token), 5xx...: the same error would stop the posting anyway
            raise
        return Identity(bot_login or ACTIONS_BOT, bot=True)
    login = user.get("login")
    if not isinstance(login, str) or not login:
        raise GitHubError(f"GET /user at {client.api_url} named no login: is GITHUB_API_URL the REST API root?")
    return Identity(login, bot=user.get("type") == "Bot")


def find_bot_comment(client: _Client, path: str, identity: Identity) -> dict | None:
    """The comment a previous run left: it starts with the marker and `identity` wrote it."""
    url: str | None = client.url(f"{path}?per_page=100")
    for _ in range(MAX_PAGES):
        if url is None:
            break
        page, url = client.get_page(url)
        for c in page:
            if (
                isinstance(c, dict)
                and "id" in c
                and str(c.get("body", "")).lstrip().startswith(MARKER)
                and identity.wrote(c)
            ):
                return c
    return None


def _check_api_url(api_url: str) -> str:
    parts = urllib.parse.urlsplit(api_url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise GitHubError(
            f"GITHUB_API_URL must be an http(s) URL such as {DEFAULT_API_URL}, got {_redact_url(api_url)!r}"
        )
    if parts.username or parts.password:
        raise GitHubError("GITHUB_API_URL must not carry credentials; the token comes from GITHUB_TOKEN")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise GitHubError(f"GITHUB_API_URL {api_url!r} is plain http: the token would travel unencrypted; use https")
    return api_url.strip().rstrip("/")


def _redact_url(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", str(url))


def _origin(url: str) -> tuple[str, str]:
    """Scheme and host:port, lowercased: the unit browsers and this client trust a token to."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only within the API's origin; urllib would otherwise resend Authorization anywhere.

    GitHub redirects within its API for a renamed repository: 301 for GET, 307 for other methods,
    which must be repeated with the same method and body (urllib's default refuses or turns them into a GET).
    """

    def __init__(self, origin: tuple[str, str]):
        self.origin = origin

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if _origin(newurl) != self.origin:
            fp.close()
            raise GitHubError(
                f"the GitHub API redirected {req.get_method()} to another origin "
                f"({_redact_url(urllib.parse.urljoin(newurl, '/'))}); refusing to send the token there: "
                "check GITHUB_API_URL (it must be the REST API root that answers itself)",
                code,
            )
        if code in (307, 308) and req.get_method() not in ("GET", "HEAD"):
            return urllib.request.Request(
                newurl,
                data=req.data,
                method=req.get_method(),
                headers=dict(req.headers),
                origin_req_host=req.origin_req_host,
                unverifiable=True,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Client:
    def __init__(self, api_url: str, token: str):
        self.api_url = api_url
        self._origin = _origin(api_url)
        self._token = token
        self._opener = urllib.request.build_opener(_SameOriginRedirects(self._origin))

    def url(self, path: str) -> str:
        return self.api_url + path

    def get_page(self, url: str) -> tuple[list, str | None]:
        data, headers = self._send("GET", url, None)
        if not isinstance(data, list):
            raise GitHubError(
                f"unexpected answer from {self.api_url} when listing comments (not a list): is GITHUB_API_URL the REST API root?"
            )
        return data, self._next_link(headers.get("Link", ""))

    def request(self, method: str, path: str, payload: dict | None) -> dict:
        data, _ = self._send(method, self.url(path), payload)
        if not isinstance(data, dict):
            raise GitHubError(
                f"unexpected answer from {self.api_url} to {method} (not an object): is GITHUB_API_URL the REST API root?"
            )
        return data

    def _next_link(self, header: str) -> str | None:
        for part in header.split(","):
            match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
            if match:
                link = match.group(1)
                if _origin(link) != self._origin:
                    raise GitHubError(
                        f"GitHub's next-page link points away from {self.api_url}; refusing to send the token there"
                    )
                return link
        return None

    def _send(self, method: str, url: str, payload: dict | None):
        headers = {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"labtax/{__version__}",
        }
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=TIMEOUT_S) as response:
                raw = response.read()
                response_headers = response.headers
        except GitHubError as exc:  # a refused redirect
            raise GitHubError(self._redact(str(exc)), exc.status) from None
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GitHubError(
                self._redact(
                    f"could not reach the GitHub API at {self.api_url} ({reason}): "
                    "check GITHUB_API_URL and the network, then rerun"
                )
            ) from None
        try:
            return (json.loads(raw.decode("utf-8")) if raw.strip() else {}), response_headers
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise GitHubError(
                f"the GitHub API at {self.api_url} answered {method} with something that is not JSON: "
                "is GITHUB_API_URL the REST API root (e.g. https://HOST/api/v3 for GitHub Enterprise)?"
            ) from None

    def _http_error(self, exc: urllib.error.HTTPError, method: str) -> GitHubError:
        status = exc.code
        try:
            detail = json.loads(exc.read().decode("utf-8", "replace")).get("message", "")
        except Exception:  # the body of an error page is only a hint; never let it hide the status
            detail = ""
        said = f" GitHub said: {str(detail)[:200]}" if detail else ""
        if status == 401:
            text = (
                "GitHub rejected the token (401 Unauthorized): check that GITHUB_TOKEN holds a valid, unexpired token."
            )
        elif status == 403:
            text = (
                "GitHub refused the request (403 Forbidden): the token may not comment here. Give the workflow "
                "`permissions: pull-requests: write`; pull requests from forks get a read-only GITHUB_TOKEN; "
                "or the API rate limit was hit (wait and rerun)."
            )
        elif status == 404:
            text = (
                "GitHub found no such repository or pull request (404 Not Found): check --repo OWNER/NAME, --pr N, "
                f"GITHUB_API_URL ({self.api_url}) and that the token can see the repository."
            )
        elif status == 422:
            text = (
                "GitHub could not accept the comment (422 Unprocessable Entity): the body was refused "
                "(too long or malformed) or the pull request is locked."
            )
        elif status >= 500:
            text = f"GitHub had a server error ({status}): nothing is wrong on your side; rerun the job later (https://www.githubstatus.com)."
        else:
            text = f"GitHub answered {method} with HTTP {status}: check --repo, --pr, GITHUB_TOKEN and GITHUB_API_URL."
        return GitHubError(self._redact(text + said), status)

    def _redact(self, text: str) -> str:
        text = _redact_url(text)
        return text.replace(self._token, "***") if self._token else text
