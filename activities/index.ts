export { createApprovalActivities, type ApprovalActivities, type ApprovalRequest } from './approval';
export { createNacActivities, type NacActivities } from './nac';
export { createAmendmentActivities, type AmendmentActivities } from './amendments';
