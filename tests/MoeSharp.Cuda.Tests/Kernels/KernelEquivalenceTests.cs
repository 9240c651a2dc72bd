using CsCheck;
using MoeSharp.Compute;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// Every <see cref="IlgpuMoeKernels"/> member on ILGPU's CPU accelerator gives the same bits as
/// <see cref="HostMoeKernels"/> on random inputs, zero sizes, pad entries, invalid ids and non-finite scores.
/// Samples run on one thread: a kernels instance (its scan scratch) serves one caller at a time, like a rank.
/// </summary>
[Collection(CpuBackendCollection.Name)]
public class KernelEquivalenceTests(CpuBackendFixture fixture)
{
    private readonly IlgpuMoeKernels _device = fixture.Backend.Kernels;
    private readonly HostMoeKernels _host = new();

    private Tensor Dev(Tensor host) => _device.Device.ToDevice(host);

    private static Tensor RandomFloats(Random r, params int[] shape)
    {
        var t = Tensor.Uninitialized(DType.Float32, shape);
        // Wide exponents, signs and exact zeros, so rounding differences would show.
        foreach (ref float v in t.AsSpan<float>())
            v = r.Next(10) == 0 ? 0f : (float)((r.NextDouble() * 2 - 1) * Math.Pow(2, r.Next(-20, 20)));
        return t;
    }

    /// <summary>Row tensors in either row dtype: the random floats, or them rounded to bfloat16.</summary>
    private static Tensor Rows(Tensor floats, bool bf16) => bf16 ? floats.ToBFloat16() : floats;

    private static void AssertBitwise(Tensor expected, Tensor actual, string what)
    {
        Tensor a = actual.ToHost();
        Assert.True(expected.AsBytes().SequenceEqual(a.AsBytes()), $"{what}: device bits differ from the host's");
    }

    [Fact]
    public void PrepareEntries_MatchesHost_IncludingPadsAndFirstInvalid()
    {
        Gen.Select(
                Gen.Int[0, 40],
                Gen.Int[1, 6],
                Gen.Int[1, 9],
                Gen.Int[0, 5],
                Gen.Bool,
                Gen.Int[0, 3],
                Gen.Int[0, int.MaxValue - 1]
            )
            .Sample(
                (tokens, k, experts, pad, wide, badMode, seed) =>
                {
                    var r = new Random(seed);
                    int rowOffset = tokens == 0 ? 0 : r.Next(tokens + 1),
                        real = tokens - rowOffset;
                    var scores = RandomFloats(r, tokens, k);
                    var idValues = new long[tokens * k];
                    for (int i = 0; i < idValues.Length; i++)
                        idValues[i] = r.Next(experts);
                    // badMode: 0 none, 1 bad ids, 2 non-finite scores, 3 both; a few of each, so "first" matters.
                    for (int i = 0; i < idValues.Length; i++)
                    {
                        if ((badMode & 1) != 0 && r.Next(8) == 0)
                            idValues[i] =
                                r.Next(2) == 0
                                    ? -1 - r.Next(3)
                                    : experts + r.Next(3) + (wide && r.Next(2) == 0 ? 1L << 33 : 0);
                        if ((badMode & 2) != 0 && r.Next(8) == 0)
                            scores.AsSpan<float>()[i] = r.Next(3) switch
                            {
                                0 => float.NaN,
                                1 => float.PositiveInfinity,
                                _ => float.NegativeInfinity,
                            };
                    }
                    Tensor ids = wide
                        ? Tensor.FromArray(idValues, tokens, k)
                        : Tensor.FromArray(idValues.Select(v => (int)v).ToArray(), tokens, k);
                    int n = (real + pad) * k;
                    var hostIds = Tensor.Zeros(DType.Int32, n);
                    var hostScores = Tensor.Zeros(DType.Float32, n);
                    EntryScan expected = _host.Entries.PrepareEntries(
                        new ShardEntries(scores, ids, rowOffset, real, pad, experts),
                        new EntryColumns(hostIds, hostScores)
                    );
                    Tensor devIds = _device.Device.Allocator.Rent(DType.Int32, n),
                        devScores = _device.Device.Allocator.Rent(DType.Float32, n);
                    EntryScan actual = _device.Entries.PrepareEntries(
                        new ShardEntries(Dev(scores), Dev(ids), rowOffset, real, pad, experts),
                        new EntryColumns(devIds, devScores)
                    );
                    Assert.Equal(expected.FirstInvalidEntry, actual.FirstInvalidEntry);
                    if (expected.FirstInvalidEntry >= 0)
                    {
                        Assert.Equal(expected.InvalidId, actual.InvalidId);
                        Assert.Equal(
                            BitConverter.SingleToInt32Bits(expected.InvalidScore),
                            BitConverter.SingleToInt32Bits(actual.InvalidScore)
                        );
                        return;
                    }
                    Assert.Equal(expected.Counts, actual.Counts);
                    AssertBitwise(hostIds, devIds, "ids");
                    AssertBitwise(hostScores, devScores, "entry scores");
                },
                iter: 150,
                threads: 1
            );
    }

    [Fact]
    public void ScanEntriesAndCountMessages_OnTheDevice_MatchHost()
    {
        Gen.Select(Gen.Int[0, 40], Gen.Int[1, 4], Gen.Int[1, 4], Gen.Int[0, 5], Gen.Bool, Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (tokens, k, ranks, pad, bad, seed) =>
                {
                    var r = new Random(seed);
                    int experts = ranks * (1 + r.Next(3)),
                        e = experts / ranks,
                        offset = r.Next(3);
                    var scores = RandomFloats(r, tokens, k);
                    var idValues = new long[tokens * k];
                    for (int i = 0; i < idValues.Length; i++)
                        idValues[i] = bad && r.Next(6) == 0 ? experts + r.Next(3) : r.Next(experts);
                    Tensor ids = Tensor.FromArray(idValues, tokens, k);
                    int n = (tokens + pad) * k,
                        length = EntryScanWords.Length(experts);
                    int[] header = [r.Next(100) - 1, tokens, pad];

                    var hostScan = Tensor.Zeros(DType.Int32, offset + length);
                    var hostSend = Tensor.Zeros(DType.Int32, ranks * (e + header.Length + 1));
                    var messages = new CountMessages(ranks, e, pad * k, [.. header]);
                    _host.Entries.ScanEntries(
                        new ShardEntries(scores, ids, 0, tokens, pad, experts),
                        new EntryColumns(Tensor.Zeros(DType.Int32, n), Tensor.Zeros(DType.Float32, n)),
                        hostScan,
                        offset
                    );
                    _host.Entries.PackCountMessages(hostScan, offset, messages, hostSend);

                    Tensor devScan = Dev(Tensor.Zeros(DType.Int32, offset + length)),
                        devSend = Dev(Tensor.Zeros(DType.Int32, ranks * (e + header.Length + 1)));
                    _device.Entries.ScanEntries(
                        new ShardEntries(Dev(scores), Dev(ids), 0, tokens, pad, experts),
                        new EntryColumns(
                            _device.Device.Allocator.Rent(DType.Int32, n),
                            _device.Device.Allocator.Rent(DType.Float32, n)
                        ),
                        devScan,
                        offset
                    );
                    _device.Entries.PackCountMessages(devScan, offset, messages, devSend);

                    int[] hw = hostScan.AsSpan<int>().ToArray(),
                        dw = devScan.ToHost().AsSpan<int>().ToArray();
                    int[] hs = hostSend.AsSpan<int>().ToArray(),
                        ds = devSend.ToHost().AsSpan<int>().ToArray();
                    EntryScan decoded = EntryScanWords.Decode(dw.AsSpan(offset), experts, pad * k);
                    if (hw[offset] != int.MaxValue)
                    {
                        // Invalid entries: the header words and every message's flag agree; counts are unspecified.
                        Assert.Equal(
                            hw.AsSpan(offset, EntryScanWords.HeaderLength).ToArray(),
                            dw.AsSpan(offset, EntryScanWords.HeaderLength).ToArray()
                        );
                        Assert.True(decoded.FirstInvalidEntry >= 0);
                        for (int q = 0; q < ranks; q++)
                            Assert.Equal(1, ds[(q + 1) * (e + header.Length + 1) - 1]);
                        return;
                    }
                    Assert.Equal(hw, dw);
                    Assert.Equal(hs, ds);
                    EntryScan direct = _host.Entries.PrepareEntries(
                        new ShardEntries(scores, ids, 0, tokens, pad, experts),
                        new EntryColumns(Tensor.Zeros(DType.Int32, n), Tensor.Zeros(DType.Float32, n))
                    );
                    Assert.Equal(direct.Counts, decoded.Counts);
                },
                iter: 120,
                threads: 1
            );
    }

    [Fact]
    public void SumInRankOrder_IsTheHostRankOrderSum_Bitwise()
    {
        Gen.Select(Gen.Int[1, 6], Gen.Int[0, 300], Gen.Bool, Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (ranks, n, bf16, seed) =>
                {
                    var r = new Random(seed);
                    Tensor gathered = Rows(RandomFloats(r, ranks, n), bf16);
                    // The host's rank-order sum: float32 adds in rank order, bfloat16 widened and rounded once.
                    Tensor wide = gathered.ToFloat32();
                    var sum = wide.AsSpan<float>().Slice(0, n).ToArray();
                    for (int q = 1; q < ranks; q++)
                    {
                        for (int i = 0; i < n; i++)
                            sum[i] += wide.AsSpan<float>()[q * n + i];
                    }
                    Tensor expected = Rows(Tensor.FromArray(sum, n), bf16);
                    Tensor values = Dev(Rows(Tensor.Zeros(DType.Float32, n), bf16));
                    _device.SumInRankOrder(Dev(gathered.Reshape(ranks * n)), ranks, values);
                    AssertBitwise(expected, values, $"{ranks} × {n} {(bf16 ? "bfloat16" : "float32")}");
                },
                iter: 80,
                threads: 1
            );
    }

    [Fact]
    public void StableSortByExpert_MatchesHost_AcrossChunks()
    {
        Gen.Select(
                Gen.Frequency((3, Gen.Int[0, 50]), (1, Gen.Int[200, 3000])),
                Gen.Int[1, 300],
                Gen.Int[0, int.MaxValue - 1]
            )
            .Sample(
                (n, experts, seed) =>
                {
                    var r = new Random(seed);
                    var ids = new int[n];
                    var counts = new int[experts];
                    // Skewed ids, so long runs of one expert cross chunk boundaries.
                    for (int i = 0; i < n; i++)
                        counts[ids[i] = r.Next(2) == 0 ? r.Next(Math.Min(3, experts)) : r.Next(experts)]++;
                    var idTensor = Tensor.FromArray(ids, n);
                    var hostOrder = Tensor.Zeros(DType.Int32, n);
                    _host.Entries.StableSortByExpert(idTensor, counts, hostOrder);
                    Tensor devOrder = _device.Device.Allocator.Rent(DType.Int32, n);
                    _device.Entries.StableSortByExpert(Dev(idTensor), counts, devOrder);
                    AssertBitwise(hostOrder, devOrder, "order");
                },
                iter: 60,
                threads: 1
            );
    }

    [Fact]
    public void BuildLocalLayout_MatchesHost_WithAndWithoutAlignmentMap()
    {
        Gen.Select(
                Gen.Int[0, 30],
                Gen.Int[0, 4],
                Gen.Int[1, 5],
                Gen.Int[1, 6],
                Gen.Int[0, 2],
                Gen.Int[0, int.MaxValue - 1]
            )
            .Sample(
                (real, pad, k, experts, alignPick, seed) =>
                {
                    var r = new Random(seed);
                    int n = (real + pad) * k;
                    var ids = new int[n];
                    var counts = new int[experts];
                    for (int i = 0; i < n; i++)
                        counts[ids[i] = i >= real * k ? 0 : r.Next(experts)]++;
                    var order = Tensor.Zeros(DType.Int32, n);
                    _host.Entries.StableSortByExpert(Tensor.FromArray(ids, n), counts, order);
                    var entryScores = RandomFloats(r, n);
                    int align = new[] { 1, 4, 16 }[alignPick];
                    Tensor? map = null;
                    int rows = n;
                    if (align > 1)
                    {
                        var m = new int[n];
                        int position = 0,
                            row = 0;
                        foreach (int c in counts)
                        {
                            for (int j = 0; j < c; j++)
                                m[position++] = row + j;
                            row += (c + align - 1) / align * align;
                        }
                        rows = row;
                        map = Tensor.FromArray(m, n);
                    }
                    Tensor[] host =
                    [
                        Tensor.Zeros(DType.Int32, rows),
                        Tensor.Zeros(DType.Float32, rows),
                        Tensor.Zeros(DType.Int32, real * k),
                        Tensor.Zeros(DType.Int32, real, k),
                    ];
                    _host.Entries.BuildLocalLayout(
                        new SortedEntries(order, entryScores, real, k, map),
                        new LocalLayoutMaps(host[0], host[1], host[2], host[3])
                    );
                    var a = _device.Device.Allocator;
                    Tensor[] dev =
                    [
                        a.Rent(DType.Int32, rows),
                        a.Rent(DType.Float32, rows),
                        a.Rent(DType.Int32, real * k),
                        a.Rent(DType.Int32, real, k),
                    ];
                    _device.Entries.BuildLocalLayout(
                        new SortedEntries(Dev(order), Dev(entryScores), real, k, map is null ? null : Dev(map)),
                        new LocalLayoutMaps(dev[0], dev[1], dev[2], dev[3])
                    );
                    string[] names = ["rowToken", "rowScore", "entryRow", "tokenPositions"];
                    for (int i = 0; i < 4; i++)
                        AssertBitwise(host[i], dev[i], names[i]);
                },
                iter: 100,
                threads: 1
            );
    }

    [Fact]
    public void BuildPermutation_MatchesHost_WithEmptyBlocksAndPadding()
    {
        // S sources × e experts of random block sizes (often zero); each expert's routed rows padded to a random
        // length.
        Gen.Select(Gen.Int[1, 4], Gen.Int[1, 6], Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (sources, experts, seed) =>
                {
                    var r = new Random(seed);
                    int blocks = sources * experts;
                    var counts = Enumerable.Range(0, blocks).Select(_ => r.Next(3) == 0 ? 0 : r.Next(1, 40)).ToArray();
                    var blockStart = new int[blocks + 1];
                    for (int b = 0; b < blocks; b++)
                        blockStart[b + 1] = blockStart[b] + counts[b];
                    var perExpert = new int[experts];
                    for (int b = 0; b < blocks; b++)
                        perExpert[b % experts] += counts[b];
                    var next = new int[experts];
                    int routed = 0;
                    for (int j = 0; j < experts; j++)
                    {
                        next[j] = routed;
                        routed += perExpert[j] + r.Next(3);
                    }
                    var destination = new int[blocks];
                    for (int p = 0; p < sources; p++)
                    {
                        for (int j = 0; j < experts; j++)
                        {
                            destination[p * experts + j] = next[j];
                            next[j] += counts[p * experts + j];
                        }
                    }
                    int received = blockStart[blocks];
                    var hostExpert = Tensor.Zeros(DType.Int32, routed);
                    var hostRank = Tensor.Zeros(DType.Int32, received);
                    _host.Entries.BuildPermutation(blockStart, destination, hostExpert, hostRank);
                    Tensor devExpert = _device.Device.Allocator.Rent(DType.Int32, routed),
                        devRank = _device.Device.Allocator.Rent(DType.Int32, received);
                    _device.Entries.BuildPermutation(blockStart, destination, devExpert, devRank);
                    AssertBitwise(hostExpert, devExpert, "expert-major map");
                    AssertBitwise(hostRank, devRank, "rank-major map");
                    // The maps are inverse on covered rows; uncovered routed rows are -1.
                    int[] toReceived = hostExpert.AsSpan<int>().ToArray(),
                        toRouted = hostRank.AsSpan<int>().ToArray();
                    for (int i = 0; i < received; i++)
                        Assert.Equal(i, toReceived[toRouted[i]]);
                    Assert.Equal(routed - received, toReceived.Count(v => v == -1));
                },
                iter: 150,
                threads: 1
            );
    }

    [Fact]
    public void GatherRows_MatchesHost_WithScaleOffsetAndMissingRows()
    {
        Gen.Select(
                Gen.Int[0, 20],
                Gen.Int[0, 25],
                Gen.OneOf(Gen.Int[0, 17], Gen.OneOfConst(8, 16, 24, 256, 512)),
                Gen.Bool,
                Gen.Bool,
                Gen.Int[0, int.MaxValue - 1]
            )
            .Sample(
                (sourceRows, destRows, d, scaled, bf16, seed) =>
                {
                    var r = new Random(seed);
                    int offset = sourceRows == 0 ? 0 : r.Next(Math.Min(3, sourceRows));
                    DType rowType = bf16 ? DType.BFloat16 : DType.Float32;
                    var source = Rows(RandomFloats(r, sourceRows, d), bf16);
                    var rowOf = new int[destRows];
                    for (int i = 0; i < destRows; i++)
                        rowOf[i] = sourceRows - offset == 0 || r.Next(5) == 0 ? -1 : r.Next(sourceRows - offset);
                    var map = Tensor.FromArray(rowOf, destRows);
                    Tensor? scale = scaled ? RandomFloats(r, destRows) : null;
                    var hostOut = Tensor.Zeros(rowType, destRows, d);
                    _host.Rows.GatherRows(source, offset, map, scale, hostOut);
                    Tensor devOut = _device.Device.Allocator.Rent(rowType, destRows, d);
                    _device.Rows.GatherRows(Dev(source), offset, Dev(map), scale is null ? null : Dev(scale), devOut);
                    AssertBitwise(hostOut, devOut, "gathered rows");
                },
                iter: 150,
                threads: 1
            );
    }

    [Fact]
    public void ScatterTokenRows_MatchesHost_TokenOrderAndGatherWidths()
    {
        // Widths of a multiple of 128 words take the token-order kernel, others the gather; pad rows must come out
        // zero.
        Gen.Select(
                Gen.Int[0, 12],
                Gen.Int[1, 4],
                Gen.OneOfConst(3, 8, 128, 256, 384, 512),
                Gen.Bool,
                Gen.Bool,
                Gen.Int[0, 5],
                Gen.Int[0, int.MaxValue - 1]
            )
            .Sample(
                (tokens, k, d, scaled, bf16, padRows, seed) =>
                {
                    var r = new Random(seed);
                    int offset = r.Next(3),
                        rows = tokens * k + padRows;
                    DType rowType = bf16 ? DType.BFloat16 : DType.Float32;
                    var source = Rows(RandomFloats(r, tokens + offset, d), bf16);
                    int[] rowOfEntry = Enumerable.Range(0, rows).OrderBy(_ => r.Next()).Take(tokens * k).ToArray();
                    var tokenOf = Enumerable.Repeat(-1, rows).ToArray();
                    for (int e = 0; e < rowOfEntry.Length; e++)
                        tokenOf[rowOfEntry[e]] = e / k;
                    var rowToken = Tensor.FromArray(tokenOf, rows);
                    var entryRow = Tensor.FromArray(rowOfEntry, tokens * k);
                    Tensor? scale = scaled ? RandomFloats(r, rows) : null;
                    var hostOut = Rows(RandomFloats(r, rows, d), bf16);
                    Tensor devOut = Dev(hostOut);
                    _host.Rows.ScatterTokenRows(
                        source,
                        offset,
                        new TokenScatter(rowToken, entryRow, k, scale),
                        hostOut
                    );
                    _device.Rows.ScatterTokenRows(
                        Dev(source),
                        offset,
                        new TokenScatter(Dev(rowToken), Dev(entryRow), k, scale is null ? null : Dev(scale)),
                        devOut
                    );
                    AssertBitwise(hostOut, devOut, $"scattered {rowType} rows, D = {d}");
                },
                iter: 120,
                threads: 1
            );
    }

    [Fact]
    public void GatherReduce_MatchesHost_OrderedWithoutFma()
    {
        Gen.Select(
                Gen.Int[0, 12],
                Gen.Int[1, 9],
                Gen.OneOf(Gen.Int[0, 19], Gen.OneOfConst(8, 16, 24, 256, 512)),
                Gen.Bool,
                Gen.Bool,
                Gen.Int[0, 3],
                Gen.Bool,
                Gen.Int[0, int.MaxValue - 1]
            )
            .Sample(
                (tokens, k, d, scaled, withInitial, destOffset, bf16, seed) =>
                {
                    var r = new Random(seed);
                    int n = tokens * k + r.Next(4);
                    var rows = Rows(RandomFloats(r, n, d), bf16);
                    var positions = new int[tokens * k];
                    var perm = Enumerable.Range(0, n).OrderBy(_ => r.Next()).ToArray();
                    for (int t = 0; t < tokens; t++)
                    {
                        var mine = perm.Skip(t * k)
                            .Take(k)
                            .Select(p => r.Next(6) == 0 ? -1 : p)
                            .OrderBy(p => p)
                            .ToArray();
                        mine.CopyTo(positions, t * k);
                    }
                    var pos = Tensor.FromArray(positions, tokens, k);
                    Tensor? scale = scaled ? RandomFloats(r, n) : null;
                    Tensor? initial = withInitial ? Rows(RandomFloats(r, tokens, d), bf16) : null;
                    var hostOut = Rows(RandomFloats(r, tokens + destOffset, d), bf16);
                    Tensor devOut = Dev(hostOut);
                    _host.Rows.GatherReduce(new TokenGather(rows, pos, scale, initial), hostOut, destOffset);
                    _device.Rows.GatherReduce(
                        new TokenGather(
                            Dev(rows),
                            Dev(pos),
                            scale is null ? null : Dev(scale),
                            initial is null ? null : Dev(initial)
                        ),
                        devOut,
                        destOffset
                    );
                    AssertBitwise(hostOut, devOut, "reduced rows");
                },
                iter: 150,
                threads: 1
            );
    }

    [Fact]
    public void RowDots_MatchesHost()
    {
        Gen.Select(Gen.Int[0, 20], Gen.Int[1, 9], Gen.Int[0, 40], Gen.Bool, Gen.Int[0, int.MaxValue - 1])
            .Sample(
                (tokens, k, d, bf16, seed) =>
                {
                    var r = new Random(seed);
                    int m = tokens * k,
                        n = m + 2,
                        bOffset = r.Next(3);
                    var a = Rows(RandomFloats(r, n, d), bf16);
                    var aRow = Tensor.FromArray(Enumerable.Range(0, m).Select(_ => r.Next(n)).ToArray(), m);
                    var b = Rows(RandomFloats(r, tokens + bOffset, d), bf16);
                    int resultOffset = r.Next(3);
                    var hostOut = RandomFloats(r, m + resultOffset + 1);
                    Tensor devOut = Dev(hostOut);
                    _host.Rows.RowDots(new RowPairs(a, aRow, b, bOffset, k), hostOut, resultOffset);
                    _device.Rows.RowDots(new RowPairs(Dev(a), Dev(aRow), Dev(b), bOffset, k), devOut, resultOffset);
                    AssertBitwise(hostOut, devOut, "row dots");
                },
                iter: 100,
                threads: 1
            );
    }

    [Fact]
    public void ClearAndCopyRows_MatchHost()
    {
        var r = new Random(5);
        var source = RandomFloats(r, 7, 5);
        var dest = RandomFloats(r, 9, 5);
        Tensor devDest = Dev(dest);
        _host.Rows.CopyRows(source, 2, dest, 3, 4);
        _device.Rows.CopyRows(Dev(source), 2, devDest, 3, 4);
        AssertBitwise(dest, devDest, "copied rows");
        _host.Rows.Clear(dest);
        _device.Rows.Clear(devDest);
        AssertBitwise(dest, devDest, "cleared");
    }

    [Fact]
    public void HostTensor_IsRejectedWithItsName()
    {
        var host = Tensor.Zeros(DType.Float32, 2, 2);
        var e = Assert.Throws<ArgumentException>(() => _device.Rows.Clear(host));
        Assert.Equal("tensor", e.ParamName);
    }
}
