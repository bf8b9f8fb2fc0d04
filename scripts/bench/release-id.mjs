/**
 * Release ids for one bench run: they sort in creation order, as nexus expects (rollback goes to
 * the newest older release), and carry the bench's name and a sequence number.
 */
export function releaseIds(prefix) {
  let sequence = 0;
  return (tag) => {
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z");
    sequence++;
    return `${stamp}-${prefix}${String(sequence).padStart(3, "0")}-${tag}`;
  };
}
