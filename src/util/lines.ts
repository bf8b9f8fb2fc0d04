/** Cuts a stream of text chunks into lines; `flush` hands over a last line without a newline. */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; flush(): void } {
  let rest = "";
  return {
    push(chunk) {
      rest += chunk;
      let end = rest.indexOf("\n");
      while (end >= 0) {
        onLine(rest.slice(0, end).replace(/\r$/, ""));
        rest = rest.slice(end + 1);
        end = rest.indexOf("\n");
      }
    },
    flush() {
      if (rest !== "") onLine(rest);
      rest = "";
    },
  };
}
