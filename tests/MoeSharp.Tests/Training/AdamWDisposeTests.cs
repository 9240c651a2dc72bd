using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Tests.Training;

/// <summary>
/// A disposed AdamW is done: it neither steps nor saves nor loads. (That its moments go back to the allocator is
/// tested on a device allocator, which keeps them: MoeSharp.Cuda.Tests' AdamWDeviceDisposeTests.)
/// </summary>
public sealed class AdamWDisposeTests
{
    [Fact]
    public void A_disposed_optimizer_refuses_every_use_and_disposes_twice_quietly()
    {
        var parameter = new Parameter("w", Tensor.Zeros(DType.Float32, 4));
        var optimizer = new AdamW([parameter]);
        optimizer.Step();

        optimizer.Dispose();
        optimizer.Dispose();

        Assert.Throws<ObjectDisposedException>(optimizer.Step);
        Assert.Throws<ObjectDisposedException>(() => optimizer.MomentsStateDict());
        Assert.Throws<ObjectDisposedException>(() => optimizer.LoadState([], 0));
        Assert.Equal(1, optimizer.StepCount);
    }
}
