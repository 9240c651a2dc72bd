namespace MoeSharp.Compute;

/// <summary>
/// The int32 layout of an entry scan left on a device (<see cref="IEntryKernels.ScanEntries"/>): word 0 the first
/// invalid entry (<see cref="int.MaxValue"/> when none), words 1–2 its id (low and high 32 bits), word 3 its score's
/// bits, then one count per expert of the real entries (pad entries are not counted there).
/// </summary>
internal static class EntryScanWords
{
    /// <summary>Words before the counts.</summary>
    public const int HeaderLength = 4;

    /// <summary>Words of a scan over <paramref name="numExperts"/> experts.</summary>
    public static int Length(int numExperts) => HeaderLength + numExperts;

    /// <summary>
    /// The scan the words describe, with <paramref name="padEntries"/> pad entries counted on expert 0.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer words than the layout needs.</exception>
    public static EntryScan Decode(ReadOnlySpan<int> words, int numExperts, int padEntries)
    {
        if (words.Length < Length(numExperts))
        {
            throw new ArgumentException(
                $"{words.Length} words cannot hold a scan of {numExperts} experts",
                nameof(words)
            );
        }
        int[] counts = words.Slice(HeaderLength, numExperts).ToArray();
        if (words[0] != int.MaxValue)
        {
            long id = ((long)words[2] << 32) | (uint)words[1];
            return new EntryScan(counts, words[0], id, BitConverter.Int32BitsToSingle(words[3]));
        }
        if (numExperts > 0)
            counts[0] += padEntries;
        return new EntryScan(counts, -1, 0, 0f);
    }

    /// <summary>
    /// Writes <paramref name="scan"/> in this layout, its counts without the <paramref name="padEntries"/> pad entries.
    /// </summary>
    public static void Encode(EntryScan scan, int padEntries, Span<int> words)
    {
        ArgumentNullException.ThrowIfNull(scan);
        bool valid = scan.FirstInvalidEntry < 0;
        words[0] = valid ? int.MaxValue : scan.FirstInvalidEntry;
        words[1] = valid ? 0 : (int)scan.InvalidId;
        words[2] = valid ? 0 : (int)(scan.InvalidId >> 32);
        words[3] = valid ? 0 : BitConverter.SingleToInt32Bits(scan.InvalidScore);
        scan.Counts.CopyTo(words.Slice(HeaderLength));
        if (valid && scan.Counts.Length > 0)
            words[HeaderLength] -= padEntries;
    }
}
