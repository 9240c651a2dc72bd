using MoeSharp.Compute;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>On a real CUDA GPU (skipped elsewhere): the dispatch path gives the host backend's bits.</summary>
public class CudaGpuTests
{
    [CudaFact]
    public void CudaKernels_MatchHost_ForwardAndBackward()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        // ILGPU launches on the legacy default stream, whose handle is 0; NCCL and cuBLAS are told so explicitly.
        Assert.Equal(IntPtr.Zero, cuda.StreamPointer);
        var r = new Random(7);
        int tokens = 300,
            d = 64,
            experts = 16,
            k = 4;
        var x = Tensor.FromArray(
            Enumerable.Range(0, tokens * d).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray(),
            tokens,
            d
        );
        var scores = Tensor.FromArray(
            Enumerable.Range(0, tokens * k).Select(_ => (float)r.NextDouble()).ToArray(),
            tokens,
            k
        );
        var ids = Tensor.FromArray(
            Enumerable
                .Range(0, tokens)
                .SelectMany(_ => Enumerable.Range(0, experts).OrderBy(_ => r.Next()).Take(k))
                .ToArray(),
            tokens,
            k
        );
        foreach (bool before in new[] { false, true })
        {
            // bfloat16 rows take the packed kernels (D = 64: eight-value packs and value pairs).
            foreach (Tensor rows in new[] { x, x.ToBFloat16() })
            {
                var config = new TokenDispatcherConfig(experts, k)
                {
                    ScoreBeforeExperts = before,
                    ExpertAlignment = 16,
                };
                Tensor[] host = Run(new LocalTokenDispatcher(config), rows, scores, ids, t => t);
                Tensor[] dev = Run(
                    new LocalTokenDispatcher(config, cuda.Kernels),
                    rows,
                    scores,
                    ids,
                    cuda.Kernels.Device.ToDevice
                );
                for (int i = 0; i < host.Length; i++)
                {
                    Assert.True(
                        host[i].BitwiseEquals(dev[i]),
                        $"result {i} ({rows.DType}, score {(before ? "before" : "after")}) differs on CUDA"
                    );
                }
            }
        }
    }

    [CudaFact]
    public void SmallUploads_AreStagedWithoutWaiting_AndArriveInOrder()
    {
        using IlgpuBackend cuda = IlgpuBackend.CreateCuda(0);
        // Uploads queued behind each other: every one lands with its own values though the host never waited, even when
        // a staging slot is reused for a later upload.
        var uploaded = new List<Tensor>();
        for (int round = 0; round < 200; round++)
        {
            int[] values = Enumerable.Range(0, 1 + round % 37).Select(i => round * 1000 + i).ToArray();
            uploaded.Add(cuda.Kernels.Device.ToDevice(Tensor.FromArray(values, values.Length)));
        }
        for (int round = 0; round < uploaded.Count; round++)
        {
            Assert.Equal(
                Enumerable.Range(0, 1 + round % 37).Select(i => round * 1000 + i),
                uploaded[round].ToHost().AsSpan<int>().ToArray()
            );
        }
        Assert.True(cuda.Allocator.StagingSlots >= 1, "the small uploads did not go through the staging slots");
    }

    private static Tensor[] Run(
        TokenDispatcher dispatcher,
        Tensor x,
        Tensor scores,
        Tensor ids,
        Func<Tensor, Tensor> toDevice
    )
    {
        Tensor dx = toDevice(x);
        DispatchResult result = dispatcher.Dispatch(dx, toDevice(scores), toDevice(ids));
        // Experts: identity, so the routed rows go straight back.
        Tensor output = dispatcher.Combine(result.RoutedTokens, result.Metadata, dx);
        DispatchBackwardResult back = dispatcher.DispatchBackward(result.RoutedTokens, result.Metadata, dx);
        var all = new List<Tensor> { result.RoutedTokens.ToHost(), output.ToHost(), back.GradX.ToHost() };
        if (back.GradTopScores is not null)
            all.Add(back.GradTopScores.ToHost());
        return all.ToArray();
    }
}
