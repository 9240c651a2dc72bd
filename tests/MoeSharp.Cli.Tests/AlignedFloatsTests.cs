using MoeSharp.Cli.Benchmarks;

namespace MoeSharp.Tests.Cli;

/// <summary>The GEMM benchmark's operand buffers: 64-byte aligned as PyTorch's tensors, freed once.</summary>
public sealed class AlignedFloatsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(131_072)]
    public unsafe void Span_OfAnyLength_StartsOnA64ByteBoundaryAndHoldsItsLength(int length)
    {
        using var buffer = new AlignedFloats(length);
        Span<float> span = buffer.Span;
        Assert.Equal(length, span.Length);
        fixed (float* first = span)
            Assert.True(length == 0 || (nuint)first % 64 == 0, $"first float at {(nuint)first:x}");
        span.Fill(2.5f);
        Assert.All(buffer.Span.ToArray(), v => Assert.Equal(2.5f, v));
    }

    [Fact]
    public void Span_AfterDispose_Throws()
    {
        var buffer = new AlignedFloats(16);
        buffer.Dispose();
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.Span.Length);
    }
}
