/** An error the ingress answers with its own status and a stable id (never a stack, never internal details). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly id: string,
    message: string
  ) {
    super(message);
  }
}

/** Temporal could not be reached within the platform's deadline: answer 503 so the platform redelivers. */
export class TemporalUnavailableError extends HttpError {
  constructor(cause: string) {
    super(503, 'temporal_unavailable', `Temporal is unavailable, retry later (${cause})`);
  }
}
