import { IntegrationError } from '../../domain/errors';
import { errorFromResponse, type NacResponse } from '../http';

/**
 * ISE-specific error classification on top of the generic one (`nac/http.ts`: 5xx transient, 4xx invalid, 401/403
 * auth):
 *
 * - A 500 whose ERSResponse is about the request's own content fails fast as `invalid` instead of being retried for
 *   30 minutes: ISE answers malformed or invalid payloads with 500 too (field notes row 8, third-party). Recognised by
 *   the titles and codes ERS uses for bad input: titles "Validation Error - …" (terraform-provider-ise PR #5),
 *   "Illegal values" (an ISE 3.4 title), "Resource Initialization Failed" / "Invalid JSON" (a recorded bad-JSON
 *   answer); codes "Application resource validation exception", "Schema validation exception", "Query validation
 *   exception" (Cisco's error table lists them as 400-class: APPLICATION_RESOURCE_VALIDATION_EXCEPTION,
 *   SCHEMA_VALIDATION_EXCEPTION, QUERY_VALIDATION_EXCEPTION; DevNet "error responses"). "CRUD operation exception"
 *   with "Internal error" and anything else stays transient.
 * - A 403 that is ISE's CSRF page ("CSRF nonce validation failed", ciscoisesdk#20) is never `auth`: the ERS client
 *   has already fetched a token in the same session and retried; what is left is an expired session, which a retry
 *   fixes.
 * - Any other 403 is a permission problem: one line naming both fixes (ERS Admin role, the PAN). `verify()` tells them
 *   apart; this message is for a write that meets it later.
 */

const VALIDATION_TITLE =
  /Validation Error|Illegal values|Resource Initialization Failed|Invalid JSON|Mandatory fields/i;
const VALIDATION_CODE = /^(Application resource|Schema|Query) validation exception$/i;

export function iseErrorFromResponse(system: string, what: string, res: NacResponse): IntegrationError {
  const base = errorFromResponse(system, what, res);
  if (res.status >= 500 && isBadInput(res.body)) {
    return new IntegrationError(`${base.message}: ISE refused the request's content; retrying cannot help`, 'invalid', {
      ...base.details,
    });
  }
  if (res.status === 403 && isCsrfRefusal(res)) {
    return new IntegrationError(
      `${system} ${what}: HTTP 403 (CSRF token refused: the ERS session expired); will retry with a new session`,
      'transient',
      { system, status: 403, code: 'CSRF' }
    );
  }
  if (res.status === 403) {
    return new IntegrationError(
      `${system} ${what}: HTTP 403 (ISE refused the write): the ERS account needs the ERS Admin role (ERS Operator can only read), and NAC_BASE_URL must be the Primary Administration Node`,
      'auth',
      { system, status: 403 }
    );
  }
  return base;
}

/** ISE's CSRF refusal: an HTML 403 mentioning CSRF (the page ciscoisesdk#20 logged). */
export function isCsrfRefusal(res: NacResponse): boolean {
  return res.status === 403 && /csrf/i.test(res.text);
}

/** A "Page not exists exception": the page asked for is past the end of the list (ansible-ise#108). */
export function isPageNotExists(res: NacResponse): boolean {
  const first = ersMessages(res.body)[0];
  return (
    res.status >= 400 &&
    !!first &&
    (/Page not exists/i.test(first.code ?? '') || /The page \d+ does not exist/i.test(first.title ?? ''))
  );
}

function isBadInput(body: unknown): boolean {
  return ersMessages(body).some((m) => VALIDATION_TITLE.test(m.title ?? '') || VALIDATION_CODE.test(m.code ?? ''));
}

function ersMessages(body: unknown): Array<{ title?: string; code?: string }> {
  const msgs = (body as { ERSResponse?: { messages?: unknown } } | undefined)?.ERSResponse?.messages;
  return Array.isArray(msgs) ? (msgs as Array<{ title?: string; code?: string }>) : [];
}
