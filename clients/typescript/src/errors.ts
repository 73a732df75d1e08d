/** `errorDetails`: the code, reason, field and retryability of a failed call. */
import { Code, ConnectError } from "@connectrpc/connect";

import { BadRequestSchema, ErrorInfoSchema } from "./descriptors.js";

export interface ErrorDetails {
  code: Code;
  message: string;
  /** Stable machine-readable category (google.rpc.ErrorInfo reason); "" when none. */
  reason: string;
  /** The request field at fault; "" when none is named. */
  field: string;
  /** The same call may simply be sent again later (UNAVAILABLE, the one code the client retries). */
  retryable: boolean;
}

interface ErrorInfoShape {
  reason: string;
  metadata: Record<string, string>;
}
interface BadRequestShape {
  fieldViolations: { field: string }[];
}

/** Reads what the server said about a failed call (any thrown value; non-Connect errors read as Unknown). */
export function errorDetails(error: unknown): ErrorDetails {
  const connectError = ConnectError.from(error);
  const [info] = connectError.findDetails(ErrorInfoSchema) as unknown as ErrorInfoShape[];
  const [badRequest] = connectError.findDetails(BadRequestSchema) as unknown as BadRequestShape[];
  return {
    code: connectError.code,
    message: connectError.rawMessage,
    reason: info?.reason ?? "",
    field: info?.metadata["field"] || badRequest?.fieldViolations[0]?.field || "",
    retryable: connectError.code === Code.Unavailable,
  };
}
