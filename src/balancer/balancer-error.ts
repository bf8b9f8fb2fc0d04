export class BalancerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BalancerError";
  }
}
