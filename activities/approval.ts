import { IntegrationError } from '../domain/errors';
import { parseAccessDuration } from '../domain/duration';
import { extractFieldTexts, parseMacList, type ParsedMac } from '../domain/mac';
import type { Amendment, ApprovalStatus, PlatformName, RequesterMessage } from '../domain/types';
import type { ApprovalPlatform } from '../platforms/platform';
import { requesterRef } from '../platforms/requester-ref';
import { hostTimeZone } from '../domain/time-zone';
import { localiseMessage, localiseTimes } from '../workflows/messages';
import { classified } from './classify';

export interface FetchRequestInput {
  platform: PlatformName;
  instanceId: string;
  macFields: string[];
  durationField?: string;
}

/** What the workflow needs from the approval: parsed here, in an activity, so parser changes never break replay. */
export interface ApprovalRequest {
  status: ApprovalStatus;
  approvalCode: string;
  approvalName?: string;
  requesterId: string;
  requesterRef: string;
  macs: ParsedMac[];
  invalid: { input: string; reason: string }[];
  duplicates: string[];
  missingFields: string[];
  expiry:
    | { kind: 'permanent' }
    | { kind: 'expires'; expiresAtMs: number; label: string }
    | { kind: 'invalid'; reason: string };
  /** A revoke / modify instance: the earlier instance it changes (see ApprovalInstance.amends). */
  amends?: Amendment;
}

export function createApprovalActivities(deps: {
  platforms: Partial<Record<PlatformName, ApprovalPlatform>>;
  /** APPROVAL_PLUS_TIMEZONE: messages and comments show their times in this zone (default: the host's). */
  timeZone?: string;
}) {
  const timeZone = deps.timeZone ?? hostTimeZone();
  const platformFor = (name: PlatformName): ApprovalPlatform => {
    const p = deps.platforms[name];
    if (!p)
      throw new IntegrationError(`platform ${name} is not configured on this worker`, 'invalid', { system: name });
    return p;
  };
  return classified({
    async fetchApprovalRequest(input: FetchRequestInput): Promise<ApprovalRequest> {
      const instance = await platformFor(input.platform).getInstance(input.instanceId);
      const { texts, missing } = extractFieldTexts(instance.form, input.macFields);
      const parsed = parseMacList(texts.join('\n'));
      const approvedAt = instance.endTime ?? Date.now();
      return {
        status: instance.status,
        approvalCode: instance.approvalCode,
        approvalName: instance.approvalName,
        requesterId: instance.requesterId,
        requesterRef: requesterRef(input.platform, instance.requesterId),
        macs: parsed.valid,
        invalid: parsed.invalid,
        duplicates: parsed.duplicates,
        missingFields: missing,
        expiry: parseAccessDuration(instance.form, input.durationField, approvedAt),
        ...(instance.amends ? { amends: instance.amends } : {}),
      };
    },
    async notifyRequester(platform: PlatformName, requesterId: string, message: RequesterMessage): Promise<string> {
      // Times are formatted here, at delivery, not in the workflow: no workflow input, and replay stays untouched.
      const { messageId } = await platformFor(platform).notifyRequester(
        requesterId,
        localiseMessage(message, timeZone)
      );
      return messageId;
    },
    async commentOnInstance(
      platform: PlatformName,
      instanceId: string,
      requesterId: string,
      text: string,
      idempotencyKey: string
    ): Promise<void> {
      await platformFor(platform).commentOnInstance(
        { instanceId, requesterId },
        localiseTimes(text, timeZone),
        idempotencyKey
      );
    },
  });
}

export type ApprovalActivities = ReturnType<typeof createApprovalActivities>;
