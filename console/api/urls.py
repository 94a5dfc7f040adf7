from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class RootView(APIView):
    def get(self, request):
        return Response({})


urlpatterns = [path("", RootView.as_view(), name="api-root")]
