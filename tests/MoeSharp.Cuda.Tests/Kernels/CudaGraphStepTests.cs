using MoeSharp.Cuda.Graphs;
using MoeSharp.Cuda.Kernels;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// A capacity-mode dispatch → experts → combine step at EP = 1 captured in a CUDA graph once and replayed on new
/// tokens and new routing written into the same buffers: every replay is bitwise the normal mode's eager step on those
/// inputs. Needs a CUDA GPU (skipped otherwise; <c>bash .device/run-gpu-tests.sh CudaGraph</c> runs it there).
/// </summary>
public class CudaGraphStepTests
{
    [CudaFact]
    public void CapacityStep_CapturedOnce_ReplaysBitwiseTheNormalMode_OnNewRouting()
    {
        const int tokens = 128,
            dim = 256,
            experts = 16,
            topK = 4;
        using IlgpuBackend backend = IlgpuBackend.CreateCuda(0);
        using CapturableStream stream = CapturableStream.Use(backend.Accelerator);
        var config = new TokenDispatcherConfig(experts, topK);
        var normal = new LocalTokenDispatcher(config, backend.Kernels);
        var bounded = new LocalTokenDispatcher(
            config with
            {
                Capacity = DispatchCapacity.Factor(1) with { ValidateOnHost = false },
            },
            backend.Kernels
        );
        var scaled = new DeviceScaledExperts(backend.Allocator);
        var random = new Random(5);
        GroupInputs first = RandomInputs.Create(random, tokens, dim, experts, topK, DType.Int32);
        Tensor x = backend.Kernels.Device.ToDevice(first.X),
            scores = backend.Kernels.Device.ToDevice(first.Scores),
            ids = backend.Kernels.Device.ToDevice(first.Ids);

        Tensor Step(TokenDispatcher dispatcher)
        {
            using DispatchResult d = dispatcher.Dispatch(x, scores, ids);
            Tensor? uploaded = d.DeviceTokensPerLocalExpert is null
                ? backend.Kernels.Device.ToDevice(Tensor.FromArray(d.TokensPerLocalExpert.ToArray(), experts))
                : null;
            Tensor expertOutput = scaled.Apply(d.RoutedTokens, d.DeviceTokensPerLocalExpert ?? uploaded!, 0);
            Tensor output = dispatcher.Combine(expertOutput, d.Metadata, x);
            backend.Allocator.Return(expertOutput);
            backend.Allocator.Return(uploaded);
            return output;
        }

        for (int warm = 0; warm < 2; warm++)
            backend.Allocator.Return(Step(bounded));
        backend.Kernels.Device.Synchronize();
        Tensor? captured = null;
        using CudaGraphStep graph = CudaGraphStep.Capture(stream, () => captured = Step(bounded));

        for (int replay = 0; replay < 3; replay++)
        {
            // New tokens and routing each time (replay 2 sends every token to experts 0..3), in the same buffers.
            GroupInputs next = RandomInputs.Create(random, tokens, dim, experts, topK, DType.Int32);
            if (replay == 2)
            {
                Span<int> skewed = next.Ids.AsSpan<int>();
                for (int i = 0; i < skewed.Length; i++)
                    skewed[i] = i % topK;
            }
            x.DeviceBuffer!.CopyFromHost(next.X.AsBytes(), 0);
            scores.DeviceBuffer!.CopyFromHost(next.Scores.AsBytes(), 0);
            ids.DeviceBuffer!.CopyFromHost(next.Ids.AsBytes(), 0);
            graph.Replay();
            byte[] replayed = captured!.ToHost().AsBytes().ToArray();
            Tensor expected = Step(normal);
            Assert.True(
                expected.ToHost().AsBytes().SequenceEqual(replayed),
                $"replay {replay}: the graph's output differs from the normal mode's"
            );
            backend.Allocator.Return(expected);
        }
    }
}
