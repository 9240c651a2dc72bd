using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The index kernels behind <see cref="IlgpuMoeKernels"/> (scan, sort, layout, permutation), one thread per entry,
/// row, token, chunk or expert as named; each reproduces <c>HostMoeKernels</c> exactly. The row kernels, written once
/// over the row type, are in <see cref="RowKernelBodies"/>, <see cref="PackedRowKernelBodies"/> and
/// <see cref="TiledRowKernelBodies"/>. Flags are ints (not bools) because they are kernel scalars.
/// </summary>
internal static class DispatchKernelBodies
{
    /// <summary>
    /// Scratch layout of <see cref="ScanEntries32"/>: first invalid entry, its id (low, high word), its score's bits,
    /// then E counts.
    /// </summary>
    public const int ScanHeader = MoeSharp.Compute.EntryScanWords.HeaderLength;

    /// <summary>
    /// Resets the scan scratch: no invalid entry yet (int.MaxValue, the identity of min), zero counts.
    /// </summary>
    public static void InitScan(Index1D i, ArrayView<int> scratch) => scratch[i] = i == 0 ? int.MaxValue : 0;

    /// <summary>
    /// Thread i: validates, converts and counts entry i (int32 ids); pad entries are written as id 0, score 0 and
    /// counted on the host.
    /// </summary>
    public static void ScanEntries32(
        Index1D i,
        ArrayView<int> expertIds,
        ArrayView<float> scores,
        int offset,
        int real,
        int experts,
        ArrayView<int> ids,
        ArrayView<float> entryScores,
        ArrayView<int> scratch
    )
    {
        if (i >= real)
        {
            ids[i] = 0;
            entryScores[i] = 0f;
            return;
        }
        int id = expertIds[offset + i];
        Store(i, id, (uint)id >= (uint)experts, scores[offset + i], ids, entryScores, scratch);
    }

    /// <summary>As <see cref="ScanEntries32"/> for int64 ids.</summary>
    public static void ScanEntries64(
        Index1D i,
        ArrayView<long> expertIds,
        ArrayView<float> scores,
        int offset,
        int real,
        int experts,
        ArrayView<int> ids,
        ArrayView<float> entryScores,
        ArrayView<int> scratch
    )
    {
        if (i >= real)
        {
            ids[i] = 0;
            entryScores[i] = 0f;
            return;
        }
        long id = expertIds[offset + i];
        Store(i, (int)id, (ulong)id >= (ulong)experts, scores[offset + i], ids, entryScores, scratch);
    }

    /// <summary>
    /// One thread: copies the first invalid entry's id and score (if any) into the scratch header, so one copy brings
    /// everything back.
    /// </summary>
    public static void FetchInvalid32(
        Index1D i,
        ArrayView<int> expertIds,
        ArrayView<float> scores,
        int offset,
        ArrayView<int> scratch
    )
    {
        int first = scratch[0];
        if (first == int.MaxValue)
            return;
        int id = expertIds[offset + first];
        scratch[1] = id;
        scratch[2] = id < 0 ? -1 : 0;
        scratch[3] = (int)Interop.FloatAsInt(scores[offset + first]);
    }

    /// <summary>
    /// Thread i: value <c>i % length</c> of count message <c>q = i / length</c>
    /// (<c>IEntryKernels.PackCountMessages</c>):
    /// the scan's counts of experts <c>[q·e, (q+1)·e)</c> (pad entries added to expert 0), the header values, then 1
    /// when the scan found an invalid entry.
    /// </summary>
    public static void PackCountMessages(
        Index1D i,
        ArrayView<int> scan,
        int expertsPerRank,
        int headerLength,
        int padEntries,
        int h0,
        int h1,
        int h2,
        int h3,
        ArrayView<int> send
    )
    {
        int length = expertsPerRank + headerLength + 1;
        int q = i / length,
            j = i - q * length;
        int value;
        if (j < expertsPerRank)
        {
            value = scan[ScanHeader + q * expertsPerRank + j];
            if (q == 0 && j == 0)
                value += padEntries;
        }
        else if (j < expertsPerRank + headerLength)
        {
            int h = j - expertsPerRank;
            value =
                h == 0 ? h0
                : h == 1 ? h1
                : h == 2 ? h2
                : h3;
        }
        else
        {
            value = scan[0] == int.MaxValue ? 0 : 1;
        }
        send[i] = value;
    }

    /// <summary>As <see cref="FetchInvalid32"/> for int64 ids.</summary>
    public static void FetchInvalid64(
        Index1D i,
        ArrayView<long> expertIds,
        ArrayView<float> scores,
        int offset,
        ArrayView<int> scratch
    )
    {
        int first = scratch[0];
        if (first == int.MaxValue)
            return;
        long id = expertIds[offset + first];
        scratch[1] = (int)id;
        scratch[2] = (int)(id >> 32);
        scratch[3] = (int)Interop.FloatAsInt(scores[offset + first]);
    }

    private static void Store(
        int i,
        int id,
        bool badId,
        float score,
        ArrayView<int> ids,
        ArrayView<float> entryScores,
        ArrayView<int> scratch
    )
    {
        // Finite means the exponent bits are not all ones (rules out ±inf and NaN), as float.IsFinite.
        bool finite = (Interop.FloatAsInt(score) & 0x7F800000u) != 0x7F800000u;
        if (badId || !finite)
        {
            // The lowest flat index wins: the host's token-major first invalid entry, whatever the thread order.
            Atomic.Min(ref scratch[0], i);
            return;
        }
        ids[i] = id;
        entryScores[i] = score;
        // Integer counts are exact, so the atomic order does not matter.
        Atomic.Add(ref scratch[ScanHeader + id], 1);
    }

    /// <summary>
    /// Entries a group of <see cref="ChunkRanks"/> ranks at most (its shared-memory copy of the chunk's ids).
    /// </summary>
    public const int MaxRankChunk = 1024;

    /// <summary>
    /// One group per chunk of <c>Group.DimX</c> entries, one thread per entry: the chunk's ids are staged in shared
    /// memory and each thread counts the equal ids before its own (<paramref name="rank"/>: its place among its
    /// expert's entries of the chunk, in original order). The last entry of each expert in the chunk writes the chunk's
    /// count into <paramref name="chunkCounts"/> ([chunks, E], zeroed beforehand), so no atomics are needed.
    /// </summary>
    public static void ChunkRanks(
        ArrayView<int> ids,
        int n,
        int experts,
        ArrayView<int> chunkCounts,
        ArrayView<int> rank
    )
    {
        ArrayView<int> staged = SharedMemory.Allocate<int>(MaxRankChunk);
        int t = Group.IdxX,
            size = Group.DimX,
            chunk = Grid.IdxX;
        int i = chunk * size + t;
        int mine = i < n ? ids[i] : -1;
        staged[t] = mine;
        Group.Barrier();
        int before = 0;
        bool last = true;
        for (int j = 0; j < size; j++)
        {
            if (staged[j] != mine)
                continue;
            if (j < t)
                before++;
            else if (j > t)
                last = false;
        }
        if (i >= n)
            return;
        rank[i] = before;
        if (last)
            chunkCounts[chunk * experts + mine] = before + 1;
    }

    /// <summary>
    /// Thread i: places entry i at its expert's start for its chunk (<see cref="ColumnScan"/> of the chunk counts) plus
    /// its rank within the chunk, so entries of one expert keep their original order.
    /// </summary>
    public static void PlaceRanked(
        Index1D i,
        ArrayView<int> ids,
        ArrayView<int> rank,
        int chunk,
        int experts,
        ArrayView<int> chunkStarts,
        ArrayView<int> order
    )
    {
        int index = i;
        order[chunkStarts[index / chunk * experts + ids[index]] + rank[index]] = index;
    }

    /// <summary>
    /// Thread e: exclusive scan of expert e's column over the chunks, starting at the expert's first sorted
    /// position, so chunk c's entries of expert e follow those of chunks before it (stability).
    /// </summary>
    public static void ColumnScan(
        Index1D e,
        ArrayView<int> chunkCounts,
        int chunks,
        int experts,
        ArrayView<int> expertStart
    )
    {
        int running = expertStart[e];
        for (int c = 0; c < chunks; c++)
        {
            int at = c * experts + e;
            int count = chunkCounts[at];
            chunkCounts[at] = running;
            running += count;
        }
    }

    /// <summary>
    /// Thread r (a received row): finds its block — the last b with <c>runs[b] ≤ r</c>, by binary search over the
    /// <paramref name="blocks"/> starts in <c>runs[0 .. blocks]</c> — and maps it to the block's destination
    /// (<c>runs[blocks + 1 + b]</c>) plus its offset, both ways.
    /// </summary>
    public static void MapBlocks(
        Index1D r,
        ArrayView<int> runs,
        int blocks,
        ArrayView<int> expertMajorRowOf,
        ArrayView<int> rankMajorRowOf
    )
    {
        int row = r;
        int low = 0,
            high = blocks - 1;
        while (low < high)
        {
            int middle = (low + high + 1) / 2;
            if (runs[middle] <= row)
                low = middle;
            else
                high = middle - 1;
        }
        int routed = runs[blocks + 1 + low] + (row - runs[low]);
        rankMajorRowOf[row] = routed;
        expertMajorRowOf[routed] = row;
    }

    /// <summary>Thread r: a row no entry lands in (expert alignment) has token -1 and score 0.</summary>
    public static void ClearRows(Index1D r, ArrayView<int> rowToken, ArrayView<float> rowScore)
    {
        rowToken[r] = -1;
        rowScore[r] = 0f;
    }

    /// <summary>Thread i: sorted position i's entry and row, as <c>HostMoeKernels.BuildLocalLayout</c>.</summary>
    public static void ScatterLayout(
        Index1D i,
        ArrayView<int> order,
        ArrayView<float> entryScores,
        ArrayView<int> rowOfSorted,
        int hasRowOf,
        int realEntries,
        int k,
        ArrayView<int> rowToken,
        ArrayView<float> rowScore,
        ArrayView<int> entryRow
    )
    {
        int entry = order[i];
        int row = hasRowOf != 0 ? rowOfSorted[i] : i;
        rowScore[row] = entryScores[entry];
        if (entry < realEntries)
        {
            rowToken[row] = entry / k;
            entryRow[entry] = row;
        }
        else
        {
            rowToken[row] = -1;
        }
    }

    /// <summary>
    /// Thread t: token t's K rows in ascending order (insertion sort: K is small and the rows distinct).
    /// </summary>
    public static void SortPositions(Index1D t, ArrayView<int> entryRow, int k, ArrayView<int> positions)
    {
        int start = t * k;
        for (int j = 0; j < k; j++)
        {
            int v = entryRow[start + j];
            int p = j;
            while (p > 0 && positions[start + p - 1] > v)
            {
                positions[start + p] = positions[start + p - 1];
                p--;
            }
            positions[start + p] = v;
        }
    }
}
