/** The one error the retention engine throws: the policy or its input cannot be used. */
export class RetentionPolicyError extends Error {}
