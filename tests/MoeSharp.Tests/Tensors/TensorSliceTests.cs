using System.Buffers;
using System.Runtime.InteropServices;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Tensors;

/// <summary>
/// <see cref="Tensor.FromMemory{T}"/> over slices further into a caller's array: every accessor, the host kernels
/// (through a dispatch, combine and layer forward) and the safetensors writer see exactly the slice, results equal
/// those over fresh arrays bit for bit, and the caller's array outside the slice is never touched. Native memory is
/// refused.
/// </summary>
public class TensorSliceTests
{
    private const float Sentinel = -12345.5f;

    /// <summary>
    /// <paramref name="values"/> placed at <paramref name="offset"/> in a larger array filled with a sentinel.
    /// </summary>
    private static T[] Embed<T>(T[] values, int offset, int tail, T sentinel)
    {
        var host = new T[offset + values.Length + tail];
        host.AsSpan().Fill(sentinel);
        values.CopyTo(host, offset);
        return host;
    }

    private static void AssertOutsideUntouched<T>(T[] host, int offset, int length, T sentinel)
    {
        for (int i = 0; i < host.Length; i++)
        {
            if (i >= offset && i < offset + length)
                continue;
            Assert.Equal(sentinel, host[i]);
        }
    }

    [Fact]
    public void Accessors_SeeOnlyTheSlice()
    {
        float[] host = Embed([1f, 2f, 3f, 4f, 5f, 6f], offset: 5, tail: 3, Sentinel);
        Tensor t = Tensor.FromMemory(host.AsMemory(5, 6), 2, 3);

        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], t.AsSpan<float>().ToArray());
        Assert.Equal([4f, 5f, 6f], t.Row<float>(1).ToArray());
        Assert.Equal(6 * sizeof(float), t.AsBytes().Length);
        Assert.Equal(MemoryMarshal.AsBytes(host.AsSpan(5, 6)).ToArray(), t.AsBytes().ToArray());
        Assert.True(t.AsMemory<float>().Span.SequenceEqual(host.AsSpan(5, 6)));
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], t.Reshape(3, 2).AsSpan<float>().ToArray());
        Assert.Equal([3f, 4f], t.Reshape(3, 2).Row<float>(1).ToArray());
        Assert.True(t.Clone().BitwiseEquals(Tensor.FromArray(new[] { 1f, 2f, 3f, 4f, 5f, 6f }, 2, 3)));
        Assert.Equal(t.AsSpan<float>().ToArray(), t.ToBFloat16().ToFloat32().AsSpan<float>().ToArray());
        Assert.Same(t, t.ToHost());
        Assert.Equal(5, t.Data<float>().Offset);

        // Writes through every accessor land in the slice, never beside it.
        t.AsSpan<float>()[0] = 10f;
        t.Row<float>(1)[2] = 60f;
        t.Reshape(6).AsMemory<float>().Span[1] = 20f;
        t.AsBytes()[8..12].Clear();
        Assert.Equal([10f, 20f, 0f, 4f, 5f, 60f], host.AsSpan(5, 6).ToArray());
        AssertOutsideUntouched(host, 5, 6, Sentinel);
    }

    [Fact]
    public void Safetensors_WritesTheSlice()
    {
        long[] host = Embed([7L, 8L, 9L], offset: 2, tail: 1, long.MaxValue);
        Tensor t = Tensor.FromMemory(host.AsMemory(2, 3), 3);
        var (tensors, prefix) = SafetensorsWriter.Prepare([new("ids", t)], null);
        using var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, tensors, prefix);
        SafetensorsContent read = SafetensorsReader.Read(stream.ToArray(), "slice");
        Assert.Equal([7L, 8L, 9L], read["ids"].AsSpan<long>().ToArray());
    }

    [Fact]
    public void NativeMemory_IsRefused_NamingWhy()
    {
        using var native = new NativeFloats(4);
        var error = Assert.Throws<ArgumentException>(() => Tensor.FromMemory(native.Memory, 4));
        Assert.Equal("memory", error.ParamName);
        Assert.Contains("not backed by an array", error.Message);
        Assert.Contains("FromArray", error.Message);
    }

    [Fact]
    public void WrongShape_IsRefused_AndASliceCannotGoIntoAPool()
    {
        var data = new float[8];
        var shape = Assert.Throws<ArgumentException>(() => Tensor.FromMemory(data.AsMemory(2, 4), 5));
        Assert.Contains("holds 5 elements but the memory has 4", shape.Message);

        var pool = new TensorPool();
        Tensor slice = Tensor.FromMemory(data.AsMemory(2, 4), 4);
        var error = Assert.Throws<InvalidOperationException>(() => pool.Return(slice));
        Assert.Contains("slice at element 2", error.Message);
        Assert.Equal(0, pool.RetainedBytes);
    }

    [Theory]
    [InlineData(2, DType.Float32)]
    [InlineData(4, DType.Float32)]
    [InlineData(4, DType.BFloat16)]
    public void DispatchAndCombine_OverSlices_EqualTheRunOnFreshArrays_AndLeaveTheRestAlone(int worldSize, DType dtype)
    {
        const int tokens = 41,
            dim = 12,
            experts = 8,
            topK = 3;
        Tensor[][] fresh = Run(sliced: false);
        Tensor[][] sliced = Run(sliced: true);
        for (int rank = 0; rank < worldSize; rank++)
        {
            for (int i = 0; i < fresh[rank].Length; i++)
            {
                Assert.True(fresh[rank][i].BitwiseEquals(sliced[rank][i]), $"rank {rank}, output {i}");
            }
        }

        Tensor[][] Run(bool sliced) =>
            InProcessWorld.Run(
                worldSize,
                world =>
                {
                    using var groups = ParallelGroups.Create(world, spSize: 1);
                    var dispatcher = new AllToAllTokenDispatcher(new TokenDispatcherConfig(experts, topK), groups);
                    var random = new Random(100 + world.Rank);
                    float[] xValues = Enumerable
                        .Range(0, tokens * dim)
                        .Select(_ => random.NextSingle() * 2 - 1)
                        .ToArray();
                    float[] scoreValues = Enumerable.Range(0, tokens * topK).Select(_ => random.NextSingle()).ToArray();
                    long[] idValues = Enumerable
                        .Range(0, tokens)
                        .SelectMany(_ =>
                            Enumerable.Range(0, experts).OrderBy(_ => random.Next()).Take(topK).Select(e => (long)e)
                        )
                        .ToArray();

                    Tensor x,
                        scores,
                        ids;
                    Action checkUntouched = () => { };
                    if (!sliced)
                    {
                        x = Tensor.FromArray(xValues, tokens, dim);
                        scores = Tensor.FromArray(scoreValues, tokens, topK);
                        ids = Tensor.FromArray(idValues, tokens, topK);
                    }
                    else
                    {
                        float[] xHost = Embed(xValues, offset: 3 + world.Rank, tail: 5, Sentinel);
                        float[] scoreHost = Embed(scoreValues, offset: 7, tail: 2, Sentinel);
                        long[] idHost = Embed(idValues, offset: 1, tail: 4, long.MinValue);
                        x = Tensor.FromMemory(xHost.AsMemory(3 + world.Rank, xValues.Length), tokens, dim);
                        scores = Tensor.FromMemory(scoreHost.AsMemory(7, scoreValues.Length), tokens, topK);
                        ids = Tensor.FromMemory(idHost.AsMemory(1, idValues.Length), tokens, topK);
                        checkUntouched = () =>
                        {
                            AssertOutsideUntouched(xHost, 3 + world.Rank, xValues.Length, Sentinel);
                            AssertOutsideUntouched(scoreHost, 7, scoreValues.Length, Sentinel);
                            AssertOutsideUntouched(idHost, 1, idValues.Length, long.MinValue);
                            Assert.Equal(xValues, xHost.AsSpan(3 + world.Rank, xValues.Length).ToArray());
                        };
                    }
                    if (dtype == DType.BFloat16)
                    {
                        // A bfloat16 slice of its own: the caller's array holds the bfloat16 rows at an offset.
                        BFloat16[] rows = x.ToBFloat16().AsSpan<BFloat16>().ToArray();
                        BFloat16[] rowHost = sliced
                            ? Embed(rows, offset: 9, tail: 1, BFloat16.FromSingle(Sentinel))
                            : rows;
                        x = sliced
                            ? Tensor.FromMemory(rowHost.AsMemory(9, rows.Length), tokens, dim)
                            : Tensor.FromArray(rows, tokens, dim);
                        Action before = checkUntouched;
                        checkUntouched = () =>
                        {
                            before();
                            if (sliced)
                                AssertOutsideUntouched(rowHost, 9, rows.Length, BFloat16.FromSingle(Sentinel));
                        };
                    }

                    using DispatchResult d = dispatcher.Dispatch(x, scores, ids);
                    Tensor routed = d.RoutedTokens.Clone();
                    int firstExpert = dispatcher.EpRank * (experts / worldSize);
                    Tensor y = ScaledIdentityExperts.Apply(
                        d.RoutedTokens,
                        d.TokensPerLocalExpert.AsSpan(),
                        firstExpert
                    );
                    using Tensor output = dispatcher.Combine(y, d.Metadata, x);
                    checkUntouched();
                    return new[] { routed, output.Clone() };
                }
            );
    }

    [Fact]
    public void LayerForward_OnASliceInput_EqualsTheForwardOnAFreshArray()
    {
        const int tokens = 23,
            dim = 16;
        using MoeLayer layer = MoeLayer.CreateLocal(new MoeLayerArgs(dim, 24, 6, 2));
        var random = new Random(7);
        float[] values = Enumerable.Range(0, tokens * dim).Select(_ => random.NextSingle() - 0.5f).ToArray();
        float[] host = Embed(values, offset: 13, tail: 6, Sentinel);

        Tensor expected = layer.Forward(Tensor.FromArray((float[])values.Clone(), tokens, dim)).Clone();
        Tensor actual = layer.Forward(Tensor.FromMemory(host.AsMemory(13, values.Length), tokens, dim)).Clone();

        Assert.True(expected.BitwiseEquals(actual));
        AssertOutsideUntouched(host, 13, values.Length, Sentinel);
        Assert.Equal(values, host.AsSpan(13, values.Length).ToArray());
    }

    [Fact]
    public void AsyncExchange_OfUnpinnedSlices_SurvivesACompactingCollection()
    {
        const int perRank = 64;
        float[][] received = InProcessWorld.Run(
            2,
            world =>
            {
                float[] sendValues = Enumerable.Range(0, 2 * perRank).Select(i => world.Rank * 1000f + i).ToArray();
                float[] sendHost = Embed(sendValues, 11, 3, Sentinel);
                float[] receiveHost = Embed(new float[2 * perRank], 4, 2, Sentinel);
                Tensor send = Tensor.FromMemory(sendHost.AsMemory(11, 2 * perRank), 2 * perRank);
                Tensor receive = Tensor.FromMemory(receiveHost.AsMemory(4, 2 * perRank), 2 * perRank);
                CollectiveRequest request = world.AllToAllVAsync<float>(
                    send.AsMemory<float>(),
                    [perRank, perRank],
                    receive.AsMemory<float>(),
                    [perRank, perRank]
                );
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                request.Wait();
                AssertOutsideUntouched(receiveHost, 4, 2 * perRank, Sentinel);
                return receive.AsSpan<float>().ToArray();
            }
        );
        for (int rank = 0; rank < 2; rank++)
        {
            float[] expected = Enumerable
                .Range(0, 2 * perRank)
                .Select(i => (i / perRank) * 1000f + rank * perRank + i % perRank)
                .ToArray();
            Assert.Equal(expected, received[rank]);
        }
    }

    /// <summary>
    /// Unmanaged memory behind a <see cref="MemoryManager{T}"/>, as a caller with native buffers has.
    /// </summary>
    private sealed unsafe class NativeFloats(int length) : MemoryManager<float>
    {
        private readonly float* _pointer = (float*)NativeMemory.AllocZeroed((nuint)length, sizeof(float));

        public override Span<float> GetSpan() => new(_pointer, length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

        public override void Unpin() { }

        protected override void Dispose(bool disposing) => NativeMemory.Free(_pointer);
    }
}
