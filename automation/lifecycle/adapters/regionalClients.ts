/** One AWS SDK client per region, made on first use and kept (the adapters' tests inject the maker). */
export class RegionalClients<T> {
  private readonly clients = new Map<string, T>();

  get(region: string, make: (region: string) => T): T {
    let c = this.clients.get(region);
    if (c === undefined) {
      c = make(region);
      this.clients.set(region, c);
    }
    return c;
  }
}
