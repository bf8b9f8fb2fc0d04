import { NexusError } from "../errors.js";

export class BalancerError extends NexusError {}
