import * as z from "zod";

type NoFields = Record<never, never>;
type Member<S extends z.ZodRawShape, E extends z.ZodRawShape> = z.ZodObject<E & S, z.core.$strict>;
type MemberOf<S extends Record<string, z.ZodRawShape>, E extends z.ZodRawShape> = {
  [K in keyof S]: Member<S[K], E>;
}[keyof S];

/**
 * The members of a discriminated union kept as a record of shapes (events by type, results by
 * command): one strict object per shape, in the record's order, each with the fields of `extra`
 * first (the `--json` envelope).
 */
export function strictMembers<S extends Record<string, z.ZodRawShape>, E extends z.ZodRawShape = NoFields>(
  shapes: S,
  extra?: E,
): [MemberOf<S, E>, ...MemberOf<S, E>[]] {
  return Object.values(shapes).map((shape) => z.strictObject({ ...extra, ...shape })) as [
    MemberOf<S, E>,
    ...MemberOf<S, E>[],
  ];
}
