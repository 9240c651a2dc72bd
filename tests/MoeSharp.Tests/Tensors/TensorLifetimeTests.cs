using System.Buffers;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Experts;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Tensors;

/// <summary>
/// Tensors over the caller's memory, disposable rented tensors, dispatch results and layers, and the pool's poisoning
/// mode that makes a use after return fail loudly.
/// </summary>
public class TensorLifetimeTests
{
    private const int Big = 1 << 15; // 128 KiB of float32: above the pool's caching threshold

    [Fact]
    public void FromMemory_WrapsAPinnedArray_WithoutCopying()
    {
        float[] data = GC.AllocateArray<float>(6, pinned: true);
        Tensor t = Tensor.FromMemory(data.AsMemory(), 2, 3);
        t.Row<float>(1)[2] = 7f;
        Assert.Equal(7f, data[5]);
        data[0] = -1f;
        Assert.Equal(-1f, t.AsSpan<float>()[0]);
    }

    [Fact]
    public void FromMemory_WrapsAPrefixOfALongerArray_AsFromAnArrayPool()
    {
        long[] rented = ArrayPool<long>.Shared.Rent(10);
        try
        {
            Tensor t = Tensor.FromMemory(rented.AsMemory(0, 4), 4);
            t.AsSpan<long>()[3] = 42;
            Assert.Equal(42, rented[3]);
            Assert.Equal(4, t.ElementCount);
        }
        finally
        {
            ArrayPool<long>.Shared.Return(rented);
        }
    }

    [Fact]
    public void FromMemory_RefusesAWrongShape_NamingWhy()
    {
        var data = new float[8];
        var shape = Assert.Throws<ArgumentException>(() => Tensor.FromMemory(data.AsMemory(), 3, 3));
        Assert.Contains("holds 9 elements but the memory has 8", shape.Message);
    }

    [Fact]
    public void Dispose_ReturnsARentedTensor_WhoseStorageTheNextRentReuses()
    {
        var pool = new TensorPool();
        Tensor first = pool.Rent(DType.Float32, Big);
        float[] storage = first.Data<float>().Array;
        using (first)
        {
            Assert.Equal(0, pool.RetainedBytes);
        }
        Assert.True(pool.RetainedBytes >= Big * sizeof(float));
        first.Dispose(); // a second Dispose does nothing
        using Tensor second = pool.Rent(DType.Float32, Big);
        Assert.Same(storage, second.Data<float>().Array);
    }

    [Fact]
    public void Return_Twice_OrThroughAView_Throws()
    {
        var pool = new TensorPool();
        Tensor t = pool.Rent(DType.Float32, 4, Big / 4);
        Tensor view = t.Reshape(Big);
        pool.Return(t);
        Assert.Throws<InvalidOperationException>(() => pool.Return(view));
        Tensor small = pool.Rent(DType.Int32, 3);
        pool.Return(small);
        Assert.Throws<InvalidOperationException>(() => pool.Return(small));
    }

    [Fact]
    public void Dispose_OfATensorNotFromAPool_DoesNothing()
    {
        var data = new float[] { 1, 2 };
        Tensor t = Tensor.FromArray(data, 2);
        t.Dispose();
        Assert.Equal(2f, t.AsSpan<float>()[1]);
    }

    [Theory]
    [InlineData(Big)]
    [InlineData(5)] // below the caching threshold: not reused, but still poisoned and checked
    public void Poisoning_FillsReturnedStorageWithNaN_AndEveryLaterAccessThrows(int elements)
    {
        var pool = new TensorPool(poisonReturned: true);
        Tensor t = pool.Rent(DType.Float32, elements);
        t.AsSpan<float>().Fill(1f);
        float[] storage = t.Data<float>().Array;
        Tensor view = t.Reshape(1, elements);
        pool.Return(t);

        Assert.All(storage, v => Assert.True(float.IsNaN(v)));
        var error = Assert.Throws<ObjectDisposedException>(() => t.AsSpan<float>());
        Assert.Contains("use after return", error.Message);
        Assert.Throws<ObjectDisposedException>(() => view.Row<float>(0));
        Assert.Throws<ObjectDisposedException>(() => t.AsBytes());
        Assert.Throws<ObjectDisposedException>(() => t.Clone());
    }

    [Fact]
    public void Poisoning_ARentAfterReturn_IsANewLiveTensor_WhileTheOldOneStaysDead()
    {
        var pool = new TensorPool(poisonReturned: true);
        Tensor old = pool.Rent(DType.Int64, Big);
        pool.Return(old);
        Tensor reused = pool.Rent(DType.Int64, Big);
        Assert.Same(old.Storage.Array, reused.Storage.Array);
        Assert.All(reused.AsSpan<long>().ToArray(), v => Assert.Equal(long.MinValue, v));
        reused.AsSpan<long>()[0] = 1;
        Assert.Throws<ObjectDisposedException>(() => old.AsSpan<long>());
    }

    [Fact]
    public void WithoutPoisoning_ReturnedStorageIsLeftAsItWas()
    {
        var pool = new TensorPool(poisonReturned: false);
        Tensor t = pool.Rent(DType.Float32, Big);
        t.AsSpan<float>().Fill(3f);
        (float[] storage, int offset) = t.Data<float>();
        pool.Return(t);
        Assert.All(storage.AsSpan(offset, Big).ToArray(), v => Assert.Equal(3f, v));
    }

    [Fact]
    public void UsingADispatchResult_ReturnsTheRoutedRowsAndReleasesTheMetadata_AndAUseAfterThatFails()
    {
        InProcessWorld.Run(
            2,
            world =>
            {
                using var groups = ParallelGroups.Create(world, spSize: 1);
                var pool = new TensorPool(poisonReturned: true);
                var dispatcher = new AllToAllTokenDispatcher(new TokenDispatcherConfig(4, 2), groups, pool: pool);
                var random = new Random(world.Rank);
                const int tokens = 2048,
                    dim = 8; // routed rows above the caching threshold
                Tensor x = Tensor.FromArray(
                    Enumerable.Range(0, tokens * dim).Select(_ => random.NextSingle()).ToArray(),
                    tokens,
                    dim
                );
                Tensor scores = Tensor.FromArray(Enumerable.Repeat(0.5f, tokens * 2).ToArray(), tokens, 2);
                Tensor ids = Tensor.FromArray(
                    Enumerable
                        .Range(0, tokens * 2)
                        .Select(i => (long)(i % 2 == 0 ? i / 2 % 4 : (i / 2 + 1) % 4))
                        .ToArray(),
                    tokens,
                    2
                );

                Tensor routed;
                DispatchMetadata metadata;
                using (DispatchResult d = dispatcher.Dispatch(x, scores, ids))
                {
                    routed = d.RoutedTokens;
                    metadata = d.Metadata;
                    Tensor y = ScaledIdentityExperts.Apply(
                        d.RoutedTokens,
                        d.TokensPerLocalExpert.AsSpan(),
                        dispatcher.EpRank * 2
                    );
                    using Tensor output = dispatcher.Combine(y, d.Metadata, x);
                    Assert.Equal(tokens, output.Rows);
                }
                Assert.Throws<ObjectDisposedException>(() => routed.AsSpan<float>());
                Assert.True(metadata.IsReleased);
            }
        );
    }

    [Fact]
    public void ADisposedLayer_RefusesForwardAndBackward()
    {
        var layer = MoeLayer.CreateLocal(new MoeLayerArgs(4, 8, 4, 2));
        Tensor x = Tensor.Zeros(DType.Float32, 3, 4);
        Tensor y = layer.Forward(x);
        layer.Dispose();
        layer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => layer.Forward(x));
        Assert.Throws<ObjectDisposedException>(() => layer.Backward(y));
    }
}
