// The one way the console talks to the services: same-origin gateway paths, the access
// token held in this module's memory only, and the refresh token only in the httpOnly
// cookie that identity sets for its token endpoint (never readable here).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

interface TokenAnswer {
  access_token: string;
  expires_in: number;
}

let accessToken: string | null = null;
let expiresAt = 0;
let refreshing: Promise<boolean> | null = null;
let onSignedOut: () => void = () => {};

export function setSignedOutHandler(handler: () => void): void {
  onSignedOut = handler;
}

export function setTokens(answer: TokenAnswer): void {
  accessToken = answer.access_token;
  // Renewed a little early so a request never leaves with a token about to expire.
  expiresAt = Date.now() + (answer.expires_in - 20) * 1000;
}

export function clearTokens(): void {
  accessToken = null;
  expiresAt = 0;
}

export function hasToken(): boolean {
  return accessToken !== null;
}

async function refreshOnce(): Promise<boolean> {
  const response = await fetch("/identity/oauth2/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "refresh_token" }),
    credentials: "same-origin",
  });
  if (!response.ok) {
    clearTokens();
    return false;
  }
  setTokens((await response.json()) as TokenAnswer);
  return true;
}

/** A new access token from the refresh cookie. Refresh tokens rotate and a reused one ends
 * the session, so refreshes never overlap: one at a time in this page, and across the
 * browser's tabs through a Web Lock where the browser has them. */
export function refresh(): Promise<boolean> {
  if (refreshing === null) {
    const run = (): Promise<boolean> => refreshOnce().catch(() => false);
    const locked =
      typeof navigator !== "undefined" && "locks" in navigator
        ? navigator.locks.request("jinji-refresh", run)
        : run();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function token(): Promise<string | null> {
  if (accessToken !== null && Date.now() < expiresAt) return accessToken;
  return (await refresh()) ? accessToken : null;
}

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function errorOf(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as {
      error?: { code: string; message: string; details?: Record<string, unknown> };
    };
    if (body.error) {
      return new ApiError(response.status, body.error.code, body.error.message, body.error.details);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(response.status, "http_error", `HTTP ${response.status}`);
}

interface Options {
  query?: Query;
  json?: unknown;
  form?: FormData;
  /** Login steps: no bearer token, no refresh on 401. */
  anonymous?: boolean;
}

async function send(method: string, path: string, options: Options): Promise<Response> {
  const run = async (bearer: string | null): Promise<Response> => {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let body: BodyInit | undefined;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    } else if (options.form) {
      body = options.form;
    }
    return fetch(withQuery(path, options.query), {
      method,
      headers,
      body,
      credentials: "same-origin",
    });
  };
  if (options.anonymous) return run(null);
  const first = await token();
  if (first === null) {
    onSignedOut();
    throw new ApiError(401, "unauthorized", "Signed out.");
  }
  let response = await run(first);
  if (response.status === 401) {
    // The token may have been refused for its age or a rotated key: one fresh try.
    clearTokens();
    if (!(await refresh())) {
      onSignedOut();
      throw await errorOf(response);
    }
    response = await run(accessToken);
  }
  return response;
}

export async function api<T>(method: string, path: string, options: Options = {}): Promise<T> {
  const response = await send(method, path, options);
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const get = <T>(path: string, query?: Query): Promise<T> => api<T>("GET", path, { query });

/** Fetches a file with the bearer token and hands it to the browser as a download. */
export async function download(path: string, query?: Query): Promise<void> {
  const response = await send("GET", path, { query });
  if (!response.ok) throw await errorOf(response);
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filenameOf(disposition) ?? path.split("/").pop() ?? "download";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function filenameOf(disposition: string): string | null {
  const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (star?.[1]) return decodeURIComponent(star[1]);
  const plain = /filename="([^"]+)"/i.exec(disposition);
  return plain?.[1] ?? null;
}

/** A multipart upload with progress (fetch cannot report upload progress; XHR can). */
export async function upload<T>(
  path: string,
  form: FormData,
  onProgress: (fraction: number) => void,
): Promise<T> {
  const bearer = await token();
  if (bearer === null) {
    onSignedOut();
    throw new ApiError(401, "unauthorized", "Signed out.");
  }
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Bearer ${bearer}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "Network error."));
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body as T);
        return;
      }
      const error = (body as { error?: { code: string; message: string; details?: Record<string, unknown> } } | null)?.error;
      reject(
        error
          ? new ApiError(xhr.status, error.code, error.message, error.details)
          : new ApiError(xhr.status, "http_error", `HTTP ${xhr.status}`),
      );
    };
    xhr.send(form);
  });
}
