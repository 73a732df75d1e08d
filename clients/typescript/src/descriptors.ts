/**
 * Schemas of the two standard gRPC/Google protocols the client reads besides its own: the
 * health service (grpc.health.v1) and the rich error details (google.rpc.ErrorInfo,
 * google.rpc.BadRequest). They are built here from descriptors written in code, so the client
 * needs no generated googleapis or grpc packages.
 */
import { create, createFileRegistry, type DescMessage, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  DescriptorProtoSchema,
  FieldDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

function message(
  name: string,
  fields: MessageInitShape<typeof FieldDescriptorProtoSchema>[],
  nested: MessageInitShape<typeof DescriptorProtoSchema> = {},
): DescriptorProto {
  return create(DescriptorProtoSchema, {
    name,
    field: fields.map((field) => ({ label: Label.OPTIONAL, ...field })),
    ...nested,
  });
}

const healthFile = create(FileDescriptorProtoSchema, {
  name: "grpc/health/v1/health.proto",
  package: "grpc.health.v1",
  syntax: "proto3",
  messageType: [
    message("HealthCheckRequest", [{ name: "service", number: 1, type: Type.STRING }]),
    message(
      "HealthCheckResponse",
      [{ name: "status", number: 1, type: Type.ENUM, typeName: ".grpc.health.v1.HealthCheckResponse.ServingStatus" }],
      {
        enumType: [
          {
            name: "ServingStatus",
            value: ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"].map((name, number) => ({ name, number })),
          },
        ],
      },
    ),
  ],
  service: [
    {
      name: "Health",
      method: [
        { name: "Check", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse" },
      ],
    },
  ],
});

const errorDetailsFile = create(FileDescriptorProtoSchema, {
  name: "google/rpc/error_details.proto",
  package: "google.rpc",
  syntax: "proto3",
  messageType: [
    message(
      "ErrorInfo",
      [
        { name: "reason", number: 1, type: Type.STRING },
        { name: "domain", number: 2, type: Type.STRING },
        { name: "metadata", number: 3, type: Type.MESSAGE, label: Label.REPEATED, typeName: ".google.rpc.ErrorInfo.MetadataEntry" },
      ],
      {
        nestedType: [
          message(
            "MetadataEntry",
            [
              { name: "key", number: 1, type: Type.STRING },
              { name: "value", number: 2, type: Type.STRING },
            ],
            { options: { mapEntry: true } },
          ),
        ],
      },
    ),
    message(
      "BadRequest",
      [{ name: "field_violations", number: 1, type: Type.MESSAGE, label: Label.REPEATED, typeName: ".google.rpc.BadRequest.FieldViolation" }],
      {
        nestedType: [
          message("FieldViolation", [
            { name: "field", number: 1, type: Type.STRING },
            { name: "description", number: 2, type: Type.STRING },
          ]),
        ],
      },
    ),
  ],
});

const registry = createFileRegistry(
  createFileRegistry(healthFile, () => undefined),
  createFileRegistry(errorDetailsFile, () => undefined),
);

function found<T>(value: T | undefined, name: string): T {
  if (value === undefined) {
    throw new Error(`descriptor ${name} missing`);
  }
  return value;
}

export const HealthService: DescService = found(registry.getService("grpc.health.v1.Health"), "Health");
export const ErrorInfoSchema: DescMessage = found(registry.getMessage("google.rpc.ErrorInfo"), "ErrorInfo");
export const BadRequestSchema: DescMessage = found(registry.getMessage("google.rpc.BadRequest"), "BadRequest");
