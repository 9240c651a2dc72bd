using MoeSharp.Compute;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// The layer's tensor scopes (per call, and the forward's saved tensors until the next forward) on a host allocator
/// that recycles and poisons returned storage, as a device allocator recycles it: a tensor returned while still in use
/// would read NaN or throw, so equal bits to the GC-backed host layer show that every scope returns only dead tensors.
/// </summary>
public sealed class LayerTensorScopeTests
{
    private static readonly MoeLayerArgs Args = new(dim: 32, hidden: 24, numExperts: 4, topK: 2)
    {
        ScoreFunc = ScoreFunction.Softmax,
        RouteNorm = true,
        SharedHidden = 5,
        SharedExpertGate = true,
        LoadBalancing = true,
    };

    [Fact]
    public void PooledPoisoningLayer_MatchesTheHostLayerBitwise_AndReturnsTheForwardsTensors()
    {
        var pool = new TensorPool(poisonReturned: true);
        var dispatch = new HostMoeKernels(pool);
        var config = new TokenDispatcherConfig(Args.NumExperts, Args.TopK);
        using var pooled = new MoeLayer(
            Args,
            new LocalTokenDispatcher(config, dispatch),
            null,
            new PooledHostKernels(dispatch)
        );
        using var host = new MoeLayer(Args, new LocalTokenDispatcher(config), null);
        var r = new Random(5);
        foreach ((Parameter a, Parameter b) in pooled.Parameters.Zip(host.Parameters))
        {
            Span<float> values = b.Value.AsSpan<float>();
            for (int i = 0; i < values.Length; i++)
                values[i] = (float)(r.NextDouble() - 0.5);
            values.CopyTo(a.Value.AsSpan<float>());
        }

        // Enough rows that the routed rows and activations (64 KiB and more) are recycled storage, not plain arrays.
        const int tokens = 600;
        for (int step = 0; step < 3; step++)
        {
            float[] x = Enumerable.Range(0, tokens * Args.Dim).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
            float[] dy = Enumerable.Range(0, tokens * Args.Dim).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
            Tensor yPooled = pooled.Forward(Tensor.FromArray((float[])x.Clone(), tokens, Args.Dim));
            Tensor yHost = host.Forward(Tensor.FromArray(x, tokens, Args.Dim));
            Assert.Equal(yHost.AsSpan<float>().ToArray(), yPooled.AsSpan<float>().ToArray());
            // Backward twice: the forward's saved tensors stay until the next forward.
            for (int repeat = 0; repeat < 2; repeat++)
            {
                MoeLayerGradients gPooled = pooled.Backward(Tensor.FromArray((float[])dy.Clone(), tokens, Args.Dim));
                MoeLayerGradients gHost = host.Backward(Tensor.FromArray((float[])dy.Clone(), tokens, Args.Dim));
                Assert.Equal(gHost.GradX.AsSpan<float>().ToArray(), gPooled.GradX.AsSpan<float>().ToArray());
                foreach ((Parameter a, Parameter b) in pooled.Parameters.Zip(host.Parameters))
                {
                    Assert.Equal(b.Grad.AsSpan<float>().ToArray(), a.Grad.AsSpan<float>().ToArray());
                }
            }
            Assert.Equal(
                host.LastRouting!.ExpertIds.AsSpan<long>().ToArray(),
                pooled.LastRouting!.ExpertIds.AsSpan<long>().ToArray()
            );
        }
        Assert.True(pool.RetainedBytes > 0, "the layer's scopes returned nothing to the pool");
    }

    /// <summary>The host kernels, with the dispatcher's recycling pool as the layer's allocator.</summary>
    private sealed class PooledHostKernels(HostMoeKernels dispatch) : ILayerKernels
    {
        private readonly HostLayerKernels _inner = new(dispatch);

        public IMoeKernels Dispatch => dispatch;

        public ITensorAllocator Allocator => dispatch.Pool;

        public IGemmKernels Gemm => _inner.Gemm;

        public IRouterKernels Router => _inner.Router;

        public IElementwiseKernels Elementwise => _inner.Elementwise;

        public IOptimizerKernels Optimizer => _inner.Optimizer;
    }
}
