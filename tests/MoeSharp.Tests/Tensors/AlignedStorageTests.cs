using MoeSharp.Tensors;

namespace MoeSharp.Tests.Tensors;

/// <summary>Host storage the library allocates starts on a 64-byte boundary, as PyTorch's CPU tensors do.</summary>
public sealed class AlignedStorageTests
{
    public static TheoryData<DType, int> Shapes =>
        new()
        {
            { DType.Float32, 1 },
            { DType.Float32, 131_072 },
            { DType.BFloat16, 3 },
            { DType.BFloat16, 80_000 },
            { DType.Int32, 7 },
            { DType.Int64, 12_000 },
        };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ZerosUninitializedAndPooledTensors_StartOnA64ByteBoundary(DType dtype, int elements)
    {
        var pool = new TensorPool();
        Tensor zeros = Tensor.Zeros(dtype, elements);
        Assert.All(zeros.AsBytes().ToArray(), b => Assert.Equal(0, b));
        AssertAligned(zeros);
        AssertAligned(Tensor.Uninitialized(dtype, 2, elements));
        AssertAligned(Tensor.Uninitialized(dtype, elements).Reshape(1, elements));
        Tensor rented = pool.Rent(dtype, elements);
        AssertAligned(rented);
        Array storage = rented.Storage.Array;
        pool.Return(rented);
        // Reused storage keeps its offset: still on the boundary, whatever the new shape.
        int fewer = elements - elements / 4;
        Tensor again = pool.Rent(dtype, fewer);
        AssertAligned(again);
        if (fewer * dtype.SizeOf() >= 1 << 16) // smaller requests are plain allocations, never reused
            Assert.Same(storage, again.Storage.Array);
    }

    [Fact]
    public void TheAlignedElements_AreTheTensorsOwn_WritesStayInsideThem()
    {
        Tensor t = Tensor.Zeros(DType.Float32, 3, 5);
        t.AsSpan<float>().Fill(7f);
        (float[] array, int offset) = t.Data<float>();
        Assert.InRange(offset, 0, 15);
        Assert.All(array.AsSpan(0, offset).ToArray(), v => Assert.Equal(0f, v));
        Assert.All(array.AsSpan(offset + 15).ToArray(), v => Assert.Equal(0f, v));
        Assert.Equal(7f, t.Row<float>(2)[4]);
        Assert.True(t.Clone().BitwiseEquals(t));
    }

    private static unsafe void AssertAligned(Tensor t)
    {
        fixed (byte* first = t.AsBytes())
            Assert.True((nuint)first % 64 == 0, $"{t}: element 0 at {(nuint)first:x}");
    }
}
