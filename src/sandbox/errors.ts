import { NexusError } from "../errors.js";

export class SandboxError extends NexusError {}
