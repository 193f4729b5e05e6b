// Schemas shared by several routes.
import { Type } from '@sinclair/typebox';

export const ErrorBody = Type.Object({
  error: Type.String(),
  error_description: Type.String(),
});
